#include "moss/model/hardware.h"
