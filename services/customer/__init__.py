"""The customer service: customer profiles, identified by phone number."""
