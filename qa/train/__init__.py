"""Training the LoRA adapter of the bundled model: ``data`` (triples mined from the
service's own index), ``train`` (sentence-transformers + peft), ``cli`` (``qa train``)."""
