"""A standards-faithful OneRoster 1.1 sandbox: synthetic districts (`generator`) served over real HTTP
(`server`) with OAuth 1.0a/2.0 checks (`auth`), filters (`filters`) and fault injection (`faults`); the
bundled demo districts live in `demo`."""
