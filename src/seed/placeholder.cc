// Replaced by the seeder sources.
