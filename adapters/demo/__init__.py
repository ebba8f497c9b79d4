"""Demo traffic for the local run (``troupe up``): operators, calls, tickets."""
