"""The audit log: canonical encoding, hashing, signing, appending and verification."""
