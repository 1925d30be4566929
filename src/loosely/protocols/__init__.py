"""Wire formats (AWS JSON, Query/XML) and the per-service operation tables that speak them."""
