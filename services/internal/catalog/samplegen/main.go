// Command samplegen writes the sample city, services/internal/catalog/city.yaml: its area tree
// with the boundary of every street, community, grid and residential compound, its departments
// and their units, and its SLA policies and issue categories.
//
// The boundaries are generated rather than drawn by hand because they must tile: 97 grids that
// share edges exactly, with no gap and no overlap, are a chore to type and easy to get wrong,
// and a test compares this program's output with the committed file so the two never drift.
// Every coordinate is a whole number of ten-thousandths of a degree (about 11 m), computed in
// integers, so that neighbours' shared edges are the same numbers and the file reads plainly.
//
// Usage:
//
//	go run ./samplegen -o city.yaml
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "samplegen:", err)
		os.Exit(1)
	}
}

// run parses the flags and writes the city to the file named by -o, or to stdout.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("samplegen", flag.ContinueOnError)
	out := fs.String("o", "", "write the city to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var buf bytes.Buffer
	if err := write(&buf, lianhua); err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// The lattice the city is laid out on, in ten-thousandths of a degree.
const (
	unitsPerDegree = 10000
	cityWest       = 110_3000 // longitude 110.30
	citySouth      = 22_6600  // latitude 22.66
	cityNorth      = 22_7400  // latitude 22.74
)

// cityPlan is the sample city as this program lays it out.
type cityPlan struct {
	id, name, timezone string
	streets            []streetPlan // west to east
}

// streetPlan is one street: a column of the city, its communities rows from north to south.
type streetPlan struct {
	id, name    string
	width       int // in lattice units
	communities []communityPlan
}

// communityPlan is one community: a row of its street, cut into grids as strips from west to
// east, with a compound in each of its first grids.
type communityPlan struct {
	short, name string   // the id without the street, and the name without "Community"
	grids       int      // how many grids the community is cut into
	compounds   []string // each compound's kind, as in "Taoyuan Garden", one per grid from the west
}

// lianhua is the sample city. The communities, grids and compounds of the first version of the
// file (Taoyuan with three grids, Hebin, Jinqiao, Yuanlin and Binjiang with two) keep their ids,
// so that issues raised against them still resolve.
var lianhua = cityPlan{
	id: "city", name: "Lianhua City", timezone: "Asia/Shanghai",
	streets: []streetPlan{
		{id: "xinhua", name: "Xinhua Street", width: 350, communities: []communityPlan{
			{"taoyuan", "Taoyuan", 3, []string{"Garden", "New Village", "Court"}},
			{"hebin", "Hebin", 2, []string{"Mansion", "Homes"}},
			{"shuangfeng", "Shuangfeng", 3, []string{"Garden", "Apartments"}},
			{"qingshan", "Qingshan", 3, []string{"Court", "New Village", "Residence"}},
			{"jinhua", "Jinhua", 3, []string{"Garden", "Terrace"}},
			{"longtan", "Longtan", 3, []string{"New Village", "Homes"}},
			{"wenchang", "Wenchang", 4, []string{"Court", "Garden", "Apartments"}},
			{"xiangyang", "Xiangyang", 3, []string{"Residence", "New Village"}},
			{"fuqian", "Fuqian", 3, []string{"Garden", "Mansion"}},
			{"nanhu", "Nanhu", 3, []string{"Lakeside", "Garden", "Court"}},
			{"beiyuan", "Beiyuan", 3, []string{"New Village", "Apartments"}},
		}},
		{id: "dongfeng", name: "Dongfeng Street", width: 300, communities: []communityPlan{
			{"jinqiao", "Jinqiao", 2, []string{"Garden", "Court"}},
			{"yuanlin", "Yuanlin", 2, []string{"New Village", "Residence"}},
			{"chaoyang", "Chaoyang", 3, []string{"Garden", "Homes", "Apartments"}},
			{"minzhu", "Minzhu", 3, []string{"New Village", "Court"}},
			{"heping", "Heping", 3, []string{"Garden", "Mansion"}},
			{"yongle", "Yongle", 3, []string{"Court", "New Village", "Terrace"}},
			{"xinglong", "Xinglong", 4, []string{"Garden", "Residence", "Homes"}},
			{"kangning", "Kangning", 3, []string{"New Village", "Apartments"}},
			{"baisha", "Baisha", 3, []string{"Garden", "Court"}},
			{"tianning", "Tianning", 3, []string{"Residence", "Garden", "New Village"}},
			{"ruyi", "Ruyi", 3, []string{"Homes", "Court"}},
		}},
		{id: "hexi", name: "Hexi Street", width: 350, communities: []communityPlan{
			{"binjiang", "Binjiang", 2, []string{"Garden", "Mansion"}},
			{"shawan", "Shawan", 3, []string{"New Village", "Court", "Homes"}},
			{"liujia", "Liujia", 3, []string{"Garden", "Apartments"}},
			{"gangkou", "Gangkou", 3, []string{"Residence", "New Village"}},
			{"yuhu", "Yuhu", 3, []string{"Lakeside", "Garden", "Court"}},
			{"lingang", "Lingang", 3, []string{"Garden", "Terrace", "Homes"}},
			{"meilin", "Meilin", 3, []string{"New Village", "Court"}},
			{"jiangbei", "Jiangbei", 3, []string{"Garden", "Residence"}},
			{"donghu", "Donghu", 3, []string{"Lakeside", "New Village", "Apartments"}},
			{"xiwan", "Xiwan", 3, []string{"Court", "Garden"}},
			{"qiaotou", "Qiaotou", 3, []string{"New Village", "Homes"}},
		}},
	},
}

// department is one department in the file, with the units that receive its work.
type department struct {
	id, name string
	units    []unit
}

// unit is a desk of a department that receives work for the areas it serves.
type unit struct {
	id, name string
	serves   []string
}

// departments returns the city's departments. Those with street-level desks get one unit per
// street, and a city unit when the bureau itself also takes work for the whole city; the rest
// serve the city as one and need no units.
func departments(c cityPlan) []department {
	perStreet := func(dept, nameFormat string) []unit {
		var us []unit
		for _, s := range c.streets {
			short := strings.TrimSuffix(s.name, " Street")
			us = append(us, unit{id: dept + "-" + s.id, name: fmt.Sprintf(nameFormat, short), serves: []string{s.id}})
		}
		return us
	}
	cityUnit := func(dept, name string) unit {
		return unit{id: dept + "-" + c.id, name: name, serves: []string{c.id}}
	}
	return []department{
		{"urban-management", "Urban Management Bureau", append(perStreet("urban-management", "%s Street Enforcement Squad"),
			cityUnit("urban-management", "City Urban Management Bureau"))},
		{"public-security", "Public Security Bureau", append(perStreet("public-security", "%s Police Station"),
			cityUnit("public-security", "City Public Security Bureau"))},
		{"market-regulation", "Market Regulation Bureau", append(perStreet("market-regulation", "%s Market Supervision Office"),
			cityUnit("market-regulation", "City Market Regulation Bureau"))},
		{"housing", "Housing and Construction Bureau", nil},
		{"water", "Water Affairs Bureau", nil},
		{"power", "Power Supply Company", nil},
		{"gas", "Gas Company", nil},
		{"environment", "Ecology and Environment Bureau", nil},
		{"transport", "Transport Bureau", nil},
		{"civil-affairs", "Civil Affairs Bureau", nil},
		{"emergency", "Emergency Management Bureau", nil},
		{"health", "Health Commission", nil},
		{"fire-rescue", "Fire and Rescue Brigade", nil},
		{"justice", "Justice Bureau", nil},
		{"greening", "Landscaping and Greening Bureau", nil},
		{"legal-team", "Judges-Prosecutors-Police-Lawyers Team",
			perStreet("legal-team", "%s Judges-Prosecutors-Police-Lawyers Team")},
		{"street-government", "Street Government", perStreet("street-government", "%s Street Government")},
		{"dispatch-desk", "City Dispatch Desk", []unit{{id: "dispatch-desk", name: "City Dispatch Desk", serves: []string{c.id}}}},
	}
}

// slaSections are the policies and categories, written by hand and carried over verbatim: they
// are a choice of the city's, not geometry to generate.
const slaSections = `# Escalation chains: what follows a breach, level by level. Each level waits (after the deadline
# for the first, after the level before for the others, in its policy's kind of time), tells its
# target (duty-officer, unit-head, street-supervisor or city-supervisor), and tells it again every
# wait, repeat more times. A level whose target is nobody is passed over at once.
chains:
  urgent:
    - {wait: 0s, target: duty-officer}
    - {wait: 15m, target: unit-head}
    - {wait: 30m, target: street-supervisor}
    - {wait: 1h, target: city-supervisor, repeat: 3}
  standard:
    - {wait: 0s, target: duty-officer}
    - {wait: 2h, target: unit-head}
    - {wait: 8h, target: street-supervisor}
    - {wait: 24h, target: city-supervisor, repeat: 2}

# Named SLA policies, referred to by the categories below. remind_at reminds the officer when
# those shares of a time limit have passed; working_time counts the limits, reminders and chain
# in working time by the city's working calendar (whistle calendar YEAR shows it).
policies:
  danger: {report_in: 30m, resolve: 2h, remind_at: [50, 80], chain: urgent}      # danger to life or property
  utility: {report_in: 1h, resolve: 24h, remind_at: [80], chain: urgent}          # water, power and gas
  utility-urgent: {report_in: 30m, resolve: 8h, remind_at: [80], chain: urgent}
  general: {report_in: 4h, resolve: 168h, remind_at: [80], chain: standard}       # 7 days
  general-urgent: {report_in: 1h, resolve: 48h, remind_at: [80], chain: urgent}
  # counted in working time: 1 and 15 working days of the calendar's 7.5 working hours
  complex: {report_in: 7h30m, resolve: 112h30m, working_time: true, remind_at: [80], chain: standard}

# Each category names its policy per urgency; an urgency left out uses the normal policy,
# except emergency, which always falls back to the danger policy.
categories:
  - {id: gas-leak, name: Gas leak, normal: danger}
  - {id: fire-hazard, name: Fire hazard, normal: danger}
  - {id: dangerous-building, name: Dangerous building, normal: danger}
  - {id: water-supply, name: Water supply failure, normal: utility, urgent: utility-urgent}
  - {id: power-outage, name: Power outage, normal: utility, urgent: utility-urgent}
  - {id: blocked-drain, name: Blocked drain, normal: utility, urgent: utility-urgent}
  - {id: unsafe-stall, name: Unsafe street stall, normal: general, urgent: general-urgent}
  - {id: road-damage, name: Damaged road or pavement, normal: general, urgent: general-urgent}
  - {id: noise, name: Noise nuisance, normal: general, urgent: general-urgent}
  - {id: sanitation, name: Rubbish and sanitation, normal: general, urgent: general-urgent}
  - {id: greenery, name: Trees and green space, normal: general}
  - {id: neighbour-dispute, name: Neighbour dispute, normal: general, urgent: general-urgent}
  - {id: public-order, name: Public order, normal: general, urgent: general-urgent}
  - {id: illegal-construction, name: Illegal construction, normal: complex}
  - {id: other, name: Other matters, normal: general}
`

// box is a rectangle on the lattice: west and east longitude, south and north latitude.
type box struct{ w, e, s, n int }

// geometry returns the box as an inline GeoJSON Polygon: one closed counter-clockwise ring of 5
// positions, as RFC 7946 orders an outer ring.
func (b box) geometry() string {
	corners := [][2]int{{b.w, b.s}, {b.e, b.s}, {b.e, b.n}, {b.w, b.n}, {b.w, b.s}}
	pos := make([]string, len(corners))
	for i, c := range corners {
		pos[i] = "[" + degrees(c[0]) + ", " + degrees(c[1]) + "]"
	}
	return "{type: Polygon, coordinates: [[" + strings.Join(pos, ", ") + "]]}"
}

// degrees prints a lattice value as decimal degrees, exactly.
func degrees(v int) string {
	return fmt.Sprintf("%d.%04d", v/unitsPerDegree, v%unitsPerDegree)
}

// split returns the i-th of n parts of [lo, hi): whole lattice units, the remainder spread so
// that no part differs from another by more than one unit.
func split(lo, hi, i, n int) (int, int) {
	return lo + (hi-lo)*i/n, lo + (hi-lo)*(i+1)/n
}

// counts are the totals the file's header states.
type counts struct{ streets, communities, grids, compounds, departments, units int }

func (c cityPlan) counts() counts {
	var n counts
	n.streets = len(c.streets)
	for _, s := range c.streets {
		n.communities += len(s.communities)
		for _, cm := range s.communities {
			n.grids += cm.grids
			n.compounds += len(cm.compounds)
		}
	}
	for _, d := range departments(c) {
		n.departments++
		n.units += max(len(d.units), 1)
	}
	return n
}

// write writes the city file for c. It writes to a buffer, whose writes cannot fail, so that a
// file is written whole or not at all.
func write(w *bytes.Buffer, c cityPlan) error {
	n := c.counts()
	cityEast := cityWest
	for _, s := range c.streets {
		cityEast += s.width
	}
	fmt.Fprintf(w, header, c.name, n.streets, n.communities, n.grids, n.compounds, n.departments, n.units,
		degrees(cityWest), degrees(cityEast), degrees(citySouth), degrees(cityNorth))

	fmt.Fprintf(w, "city:\n  id: %s\n  name: %s\n  timezone: %s\n", c.id, c.name, c.timezone)
	fmt.Fprintf(w, "  boundary: %s\n  streets:\n", box{cityWest, cityEast, citySouth, cityNorth}.geometry())
	west := cityWest
	for _, s := range c.streets {
		street := box{west, west + s.width, citySouth, cityNorth}
		west = street.e
		fmt.Fprintf(w, "    - id: %s\n      name: %s\n      boundary: %s\n      communities:\n", s.id, s.name, street.geometry())
		for i, cm := range s.communities {
			// Rows from the north: the row's north edge is its northern neighbour's south edge.
			north, south := split(cityNorth, citySouth, i, len(s.communities))
			community := box{street.w, street.e, south, north}
			id := s.id + "-" + cm.short
			fmt.Fprintf(w, "        - id: %s\n          name: %s Community\n          boundary: %s\n          grids:\n",
				id, cm.name, community.geometry())
			grids := make([]box, cm.grids)
			for g := range grids {
				gw, ge := split(community.w, community.e, g, cm.grids)
				grids[g] = box{gw, ge, community.s, community.n}
				fmt.Fprintf(w, "            - {id: %s, name: %s Grid %d, boundary: %s}\n", gridID(id, g), cm.name, g+1, grids[g].geometry())
			}
			if len(cm.compounds) > cm.grids {
				return fmt.Errorf("community %s has %d compounds for %d grids; the layout puts at most one in a grid",
					id, len(cm.compounds), cm.grids)
			}
			if len(cm.compounds) > 0 {
				fmt.Fprintf(w, "          compounds:\n")
			}
			for k, kind := range cm.compounds {
				fmt.Fprintf(w, "            - {id: %s, name: %s %s, grid: %s, boundary: %s}\n",
					cm.short+"-"+strings.ToLower(strings.ReplaceAll(kind, " ", "-")), cm.name, kind,
					gridID(id, k), compound(grids[k], k).geometry())
			}
		}
	}

	fmt.Fprintf(w, "\ndepartments:\n")
	for _, d := range departments(c) {
		if len(d.units) == 0 {
			fmt.Fprintf(w, "  - {id: %s, name: %s}\n", d.id, d.name)
			continue
		}
		fmt.Fprintf(w, "  - id: %s\n    name: %s\n    units:\n", d.id, d.name)
		for _, u := range d.units {
			fmt.Fprintf(w, "      - {id: %s, name: %s, serves: [%s]}\n", u.id, u.name, strings.Join(u.serves, ", "))
		}
	}
	fmt.Fprintf(w, "\n%s", slaSections)
	return nil
}

// gridID names the g-th grid (from 0) of a community.
func gridID(community string, g int) string { return fmt.Sprintf("%s-%02d", community, g+1) }

// compound returns the boundary of the k-th compound of a community, in grid g: a block of
// about 200 to 300 m a side set in from the grid's south-west corner, its size and place varied
// with k so that the compounds do not all look alike. The narrowest grid is 75 units wide and
// every row at least 72 units high, and a block reaches at most 46 units from the grid's west
// edge and 54 from its south edge, so it lies strictly inside.
func compound(g box, k int) box {
	w := g.w + 12 + 4*(k%2)
	s := g.s + 14 + 8*(k%3)
	return box{w, w + 20 + 5*(k%3), s, s + 18 + 6*(k%2)}
}

// header is the file's opening comment; its verbs are the city's name and counts and its
// bounding box.
const header = `# The sample city that Whistle loads by default: %s, an area tree of %d streets, %d
# communities, %d grids and %d residential compounds with their boundaries, the %d departments
# (%d units) that can be summoned, and the issue categories with their SLA policies (report-in and
# resolve time limits per urgency). A real deployment points --catalog at its own file of the same
# shape.
#
# Generated by ./samplegen (go generate ./services/internal/catalog): change the generator, not
# this file; a test fails when the two differ.
#
# The format:
#   city        the area tree: city, streets, communities, grids. Every area has an id unique in
#               the file and a name, and may have a boundary.
#   boundary    a GeoJSON Polygon geometry (RFC 7946): {type: Polygon, coordinates: [outer ring,
#               hole, ...]}, each ring a list of [longitude, latitude] positions in WGS-84
#               degrees, at least 4, the first repeated last. The grids of a community tile it:
#               neighbours share edges, with no gap and no overlap.
#   compounds   the residential compounds of a community, each naming the grid it lies in; its
#               boundary lies strictly inside that grid.
#   departments who can be summoned. A department's units are the desks that receive its work,
#               each serving the areas it names (a street's id, or city for the whole city); a
#               department without units has one unit, its own id, serving the city. Unit ids
#               are unique in the file and never another department's id.
#   policies    named pairs of SLA time limits; categories name one per urgency.
#
# The layout: the streets are columns from west to east, the communities of a street rows from
# north to south, the grids of a community strips from west to east, and each compound a small
# block in one grid. Every coordinate is a whole number of ten-thousandths of a degree; the city
# spans longitude %s to %s, latitude %s to %s.
`
