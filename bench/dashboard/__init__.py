"""The dashboard benchmark: page loads and API calls with 100,000 jobs in a queue."""
