// Placeholder until the Models layer lands.
