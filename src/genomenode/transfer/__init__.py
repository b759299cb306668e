"""Data transfer: Crypt4GH streams, GA4GH htsget 1.3 and DRS 1.4 for granted data."""
