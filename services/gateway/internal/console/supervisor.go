package console

import "net/http"

// supervisorRoutes adds the supervisor's pages.
func (c *Console) supervisorRoutes(m *http.ServeMux) {}
