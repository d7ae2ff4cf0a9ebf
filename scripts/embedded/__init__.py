"""The embedded default: the whole platform on one machine, on moto, with no AWS account."""
