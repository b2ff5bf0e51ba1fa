"""Fault injection: every fault a nightly job meets, injected at its boundary, one module each."""
