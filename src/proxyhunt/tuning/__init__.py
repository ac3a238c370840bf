"""Tuning of findings: Sigma filters that suppress findings with an audit trail, and correlation with process events."""
