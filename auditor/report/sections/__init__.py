"""One module per report section: ``build(src)`` makes its view (plain data, tested without
rendering) and, where the section has figures, ``draw(view, src, canvas)`` writes them."""
