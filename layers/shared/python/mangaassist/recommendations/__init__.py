"""Product recommendations: candidates by vector similarity, reasons written by the fast model."""
