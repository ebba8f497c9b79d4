"""The operator service: operators, their site, skills, roles and presence."""
