// Replaced by the ClickHouse client sources.
