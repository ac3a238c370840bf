"""Sigma rules: the bundled rule pack and loading of user rule files with pySigma."""
