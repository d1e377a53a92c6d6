"""Commands for developers, run from a checkout with `python -m tools.<name>`: the service's
benchmark (`tools.bench`), a soak test (`tools.soak`) and the training seeds table
(`tools.seeds`). Not part of the product: neither package imports them, and the Docker image
does not contain them."""
