"""The assistant's conversation: grounded answers from the catalog, remembered per session."""
