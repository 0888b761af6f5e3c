package console

import "net/http"

// gridWorkerRoutes adds the grid worker's pages.
func (c *Console) gridWorkerRoutes(m *http.ServeMux) {}
