"""Price sources behind one small interface (see `base.PriceSource`)."""
