"""The web: fetching prospect websites behind the address guard, and reading their pages."""
