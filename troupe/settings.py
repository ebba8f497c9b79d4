"""Settings of the layer, read from the environment (``TROUPE_...``) or ``troupe.toml``.

Pointing Troupe at another Kafka cluster changes only these values: bootstrap
servers, security protocol and the SASL/TLS options.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    # Partitions and replication of topics the layer creates itself.
    partitions: int = 6
    replication_factor: int = 1

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka options shared by every producer, consumer and admin client."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TROUPE_", env_nested_delimiter="__", toml_file="troupe.toml")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    # Where local state lives: stores, the local broker's data, pid files.
    state_dir: Path = Path(".troupe")
    # Where downloaded artifacts (Apache Kafka jars) are cached.
    cache_dir: Path = Path(".cache")
    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values, then the environment, then troupe.toml.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
