// Placeholder until the Analysis layer lands.
