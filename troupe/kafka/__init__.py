"""The local Apache Kafka cluster (KRaft mode) for development and tests.

``local`` fetches the broker jars from Maven Central and runs the nodes;
``commands`` adds ``troupe kafka fetch|up|down|status``. Production clusters are
reached through ``troupe.settings`` only.
"""
