package domain

import "github.com/whistle-dispatch/whistle/services/internal/catalog"

// GridDepartment is the grid workers' department, whose unit for a grid holds its grid matters.
const GridDepartment = catalog.GridDepartment
