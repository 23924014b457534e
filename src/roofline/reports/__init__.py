"""Reports: tables, JSON and CSV (and, later, plots and spreadsheets). Formatting lives here only."""
