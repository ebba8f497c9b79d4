"""The ticket service: customers' requests and their resolution."""
