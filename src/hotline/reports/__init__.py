"""Reports: the period summary and findings as JSON-ready values, and the printable first-week page."""
