"""proxyhunt: hunt Sigma detections in web-proxy logs."""

__version__ = "0.1.0"
