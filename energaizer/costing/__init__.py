"""Money and carbon: unit conversions, grid carbon intensity by region, feature costs."""
