"""Typed actors: behaviors, refs, contexts, supervision and the local actor system."""
