"""Command-line interface (typer). Parses, loads, calls the simulator, hands results to reports."""
