package api

// CheapHashes returns c with new password hashes at argon2id's lowest cost
// (64 KiB, 1 pass): for a test whose subject is not hashing and that
// hashes hundreds of passwords, so that it does not take the CPU the
// package's other tests hash with.
func CheapHashes(c Config) Config {
	c.cheapHashes = true
	return c
}
