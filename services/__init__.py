"""The services of the contact-center layer, one folder each."""
