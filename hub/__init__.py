"""The organization hub: its template (hub/template.yaml) and the member stack packager (package.py)."""
