// Placeholder until the Replay layer lands.
