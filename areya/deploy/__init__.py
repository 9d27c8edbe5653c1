"""Operations support for deployed services: health probes and declarative camera registration."""
