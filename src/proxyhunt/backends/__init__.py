"""pySigma backends owned by proxyhunt, and the WebSession field-mapping pipeline."""
