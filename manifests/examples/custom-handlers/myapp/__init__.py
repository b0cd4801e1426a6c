"""Example handler package for the custom worker image."""
