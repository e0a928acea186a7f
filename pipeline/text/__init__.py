"""Ticket text: HTML to text, salient terms, IP addresses, and redaction before text leaves the
tenant."""
