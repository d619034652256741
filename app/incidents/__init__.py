"""Incident reports: harm events, their source reports, triage, duplicates and search."""
