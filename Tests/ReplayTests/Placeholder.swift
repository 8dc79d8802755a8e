// Replay tests are added with the engine.
