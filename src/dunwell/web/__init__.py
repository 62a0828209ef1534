"""Server-rendered pages: the hosted billing page and customer page (see docs/hosted-pages.md)."""
