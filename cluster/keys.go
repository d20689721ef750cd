package cluster

import "github.com/urbanwatch/urbanwatch/config"

// CityKeys returns the partition Key (LogOptions.Key) of city c: every
// device of a truck is keyed by the truck ("truck:" and its plate), so a
// truck's GPS terminal and its sensor box land in one partition and one
// engine judges the truck; any other device (a gauge, a device bound to no
// truck) is keyed by its own id.
//
// The key follows the city file: moving a device to another truck moves
// its later records to that truck's partition.
func CityKeys(c *config.City) func(device string) string {
	byDevice := map[string]string{}
	if c != nil {
		for _, t := range c.Trucks {
			for _, d := range t.Devices {
				byDevice[d] = "truck:" + t.Plate
			}
		}
	}
	return func(device string) string {
		if k, ok := byDevice[device]; ok {
			return k
		}
		return device
	}
}
