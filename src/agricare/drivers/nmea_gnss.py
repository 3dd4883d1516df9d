"""NMEA-0183 GNSS receiver parsing (pynmea2): GGA, RMC, VTG, GST -> fixes and velocities.

:class:`NmeaParser` takes raw bytes in any chunking (a serial read, a pty read, a file) and returns
:class:`GnssFix` / :class:`GnssVelocity` events. Bad checksums, missing checksums, garbage and partial or
over-long lines are counted and skipped, never raised.

Fix quality (GGA field 6) -> ``sensor_msgs/NavSatStatus.status``:

=====  ==========================  =================  =====================
 qual   meaning                     status             default UERE [m]
=====  ==========================  =================  =====================
 0      invalid                     NO_FIX (-1)        -
 1      GPS / SPS                   FIX (0)            3.0
 2      DGPS                        SBAS_FIX (1)       1.0
 3      PPS                         FIX (0)            3.0
 4      RTK fixed                   GBAS_FIX (2)       0.02
 5      RTK float                   GBAS_FIX (2)       0.3
 6      dead reckoning              FIX (0)            10.0
 7      manual input                NO_FIX (-1)        -
 8      simulation                  FIX (0)            3.0
 9      WAAS / SBAS                 SBAS_FIX (1)       1.0
=====  ==========================  =================  =====================

Covariance (ENU, m^2, row-major 3x3): from the last GST of the same epoch (within ``gst_max_age_s`` of the
GGA time) as ``diag(sigma_lon^2, sigma_lat^2, sigma_alt^2)`` with ``COVARIANCE_TYPE_DIAGONAL_KNOWN``;
otherwise ``sigma_h = HDOP * UERE(quality)``, ``sigma_v = vertical_factor * sigma_h`` with
``COVARIANCE_TYPE_APPROXIMATED``. No fix: NaN position, ``COVARIANCE_TYPE_UNKNOWN``.
Altitude is ellipsoidal (MSL altitude + geoid separation), as NavSatFix wants.
"""

from __future__ import annotations

import dataclasses
import math

import pynmea2

# sensor_msgs/NavSatStatus and NavSatFix constants (kept here: drivers never import ROS)
STATUS_NO_FIX, STATUS_FIX, STATUS_SBAS_FIX, STATUS_GBAS_FIX = -1, 0, 1, 2
SERVICE_GPS, SERVICE_GLONASS, SERVICE_COMPASS, SERVICE_GALILEO = 1, 2, 4, 8
COVARIANCE_TYPE_UNKNOWN, COVARIANCE_TYPE_APPROXIMATED, COVARIANCE_TYPE_DIAGONAL_KNOWN = 0, 1, 2

QUALITY_STATUS = {0: STATUS_NO_FIX, 1: STATUS_FIX, 2: STATUS_SBAS_FIX, 3: STATUS_FIX, 4: STATUS_GBAS_FIX,
                  5: STATUS_GBAS_FIX, 6: STATUS_FIX, 7: STATUS_NO_FIX, 8: STATUS_FIX, 9: STATUS_SBAS_FIX}
DEFAULT_UERE_M = {1: 3.0, 2: 1.0, 3: 3.0, 4: 0.02, 5: 0.3, 6: 10.0, 8: 3.0, 9: 1.0}
QUALITY_NAMES = {0: "invalid", 1: "GPS", 2: "DGPS", 3: "PPS", 4: "RTK fixed", 5: "RTK float",
                 6: "dead reckoning", 7: "manual", 8: "simulation", 9: "SBAS"}
TALKER_SERVICE = {"GP": SERVICE_GPS, "GL": SERVICE_GLONASS, "GA": SERVICE_GALILEO, "GB": SERVICE_COMPASS,
                  "BD": SERVICE_COMPASS, "GN": SERVICE_GPS | SERVICE_GLONASS | SERVICE_GALILEO}
KNOTS_TO_MPS = 1852.0 / 3600.0
KMPH_TO_MPS = 1.0 / 3.6
MAX_LINE = 160  # NMEA says 82; some receivers send longer proprietary lines
DAY_S = 86400.0


@dataclasses.dataclass
class GnssFix:
    """One position fix (from GGA).

    Attributes
    ----------
    time_of_day_s : float
        UTC seconds since midnight of the fix (NaN if absent).
    latitude_deg, longitude_deg, altitude_m : float
        WGS-84; altitude above the ellipsoid. NaN when there is no fix.
    quality : int
        GGA fix quality (0..9).
    status, service : int
        NavSatStatus fields.
    num_satellites : int
    hdop : float
    position_covariance : tuple of 9 float
        ENU [m^2], row-major.
    covariance_type : int
        NavSatFix COVARIANCE_TYPE_*.
    """

    time_of_day_s: float
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    quality: int
    status: int
    service: int
    num_satellites: int
    hdop: float
    position_covariance: tuple
    covariance_type: int

    @property
    def has_fix(self) -> bool:
        return self.status != STATUS_NO_FIX


@dataclasses.dataclass
class GnssVelocity:
    """Ground velocity (from VTG, or RMC while no VTG has been seen).

    Attributes
    ----------
    east_mps, north_mps : float
        ENU components [m/s].
    speed_mps : float
    course_rad : float
        Course over ground, clockwise from true north [rad]; NaN when not reported.
    source : str
        'VTG' or 'RMC'.
    """

    east_mps: float
    north_mps: float
    speed_mps: float
    course_rad: float
    source: str


@dataclasses.dataclass
class NmeaCounters:
    sentences: int = 0
    fixes: int = 0
    velocities: int = 0
    checksum_errors: int = 0
    parse_errors: int = 0
    ignored: int = 0
    overlong: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _tod(ts) -> float:
    if ts is None:
        return math.nan
    return ts.hour * 3600.0 + ts.minute * 60.0 + ts.second + ts.microsecond * 1e-6


def _float(text, default=math.nan) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


class NmeaParser:
    """Incremental NMEA parser.

    Parameters
    ----------
    uere_m : dict, optional
        Horizontal 1-sigma per unit HDOP [m] per fix quality (defaults in the module docstring).
    vertical_factor : float
        Vertical sigma = factor * horizontal sigma when no GST is available.
    gst_max_age_s : float
        A GST is used for a GGA when their UTC times differ by at most this [s].
    """

    def __init__(self, uere_m: dict | None = None, vertical_factor: float = 2.0, gst_max_age_s: float = 1.5):
        self.uere_m = dict(DEFAULT_UERE_M if uere_m is None else uere_m)
        self.vertical_factor = float(vertical_factor)
        self.gst_max_age_s = float(gst_max_age_s)
        self.counters = NmeaCounters()
        self._buf = bytearray()
        self._discarding = False
        self._gst: tuple[float, float, float, float] | None = None  # tod, sigma lat, lon, alt
        self._seen_vtg = False
        self.last_quality = -1

    def reset(self) -> None:
        """Forget partial input and epoch state (after a reconnect); counters are kept."""
        self._buf.clear()
        self._discarding = False
        self._gst = None

    def feed(self, data: bytes) -> list:
        """Consume bytes; return the :class:`GnssFix` / :class:`GnssVelocity` events they complete."""
        out = []
        self._buf.extend(data)
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > MAX_LINE:
                    if not self._discarding:
                        self.counters.overlong += 1
                    self._discarding = True  # drop the rest of this line
                    self._buf.clear()
                break
            line = bytes(self._buf[:i])
            del self._buf[: i + 1]
            if self._discarding or len(line) > MAX_LINE:
                if not self._discarding:
                    self.counters.overlong += 1
                self._discarding = False
                continue
            ev = self.parse_line(line)
            if ev is not None:
                out.append(ev)
        return out

    def parse_line(self, line: bytes):
        """Parse one line (without or with CR/LF); return an event, or None (counted) if unusable."""
        line = bytes(line).strip(b"\r\n \t\x00")
        if not line:
            return None
        start = line.rfind(b"$")
        if start < 0:
            self.counters.parse_errors += 1
            return None
        try:
            text = line[start:].decode("ascii")
        except UnicodeDecodeError:
            self.counters.parse_errors += 1
            return None
        try:
            msg = pynmea2.parse(text, check=True)
        except pynmea2.ChecksumError:
            self.counters.checksum_errors += 1
            return None
        except Exception:  # pynmea2 raises ParseError, SentenceTypeError, ValueError, ...
            self.counters.parse_errors += 1
            return None
        self.counters.sentences += 1
        try:
            if isinstance(msg, pynmea2.GGA):
                return self._gga(msg)
            if isinstance(msg, pynmea2.GST):
                return self._gst_sentence(msg)
            if isinstance(msg, pynmea2.VTG):
                return self._vtg(msg)
            if isinstance(msg, pynmea2.RMC):
                return self._rmc(msg)
        except Exception:  # a field that does not convert (pynmea2 converts lazily)
            self.counters.parse_errors += 1
            return None
        self.counters.ignored += 1
        return None

    def _gga(self, msg) -> GnssFix:
        quality = int(msg.gps_qual) if msg.gps_qual not in (None, "") else 0
        tod = _tod(msg.timestamp)
        status = QUALITY_STATUS.get(quality, STATUS_NO_FIX)
        service = TALKER_SERVICE.get(msg.talker, SERVICE_GPS)
        nsat = int(_float(msg.num_sats, 0.0))
        hdop = _float(msg.horizontal_dil)
        if status == STATUS_NO_FIX or not msg.lat or not msg.lon:
            self.last_quality = quality
            self.counters.fixes += 1
            return GnssFix(tod, math.nan, math.nan, math.nan, quality, STATUS_NO_FIX, service, nsat, hdop,
                           (0.0,) * 9, COVARIANCE_TYPE_UNKNOWN)
        lat, lon = float(msg.latitude), float(msg.longitude)
        alt = _float(msg.altitude) + _float(msg.geo_sep, 0.0)
        if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90.0 and abs(lon) <= 180.0):
            raise ValueError("latitude/longitude out of range")
        cov, cov_type = self._covariance(tod, quality, hdop)
        if not math.isfinite(alt):
            alt = math.nan
        self.last_quality = quality
        self.counters.fixes += 1
        return GnssFix(tod, lat, lon, alt, quality, status, service, nsat, hdop, cov, cov_type)

    def _covariance(self, tod: float, quality: int, hdop: float):
        if self._gst is not None:
            g_tod, s_lat, s_lon, s_alt = self._gst
            dt = abs(tod - g_tod)
            dt = min(dt, DAY_S - dt)
            if dt <= self.gst_max_age_s:
                return (s_lon ** 2, 0.0, 0.0, 0.0, s_lat ** 2, 0.0, 0.0, 0.0, s_alt ** 2), \
                    COVARIANCE_TYPE_DIAGONAL_KNOWN
        uere = self.uere_m.get(quality)
        if uere is None or not (math.isfinite(hdop) and hdop > 0):
            return (0.0,) * 9, COVARIANCE_TYPE_UNKNOWN
        sh = hdop * uere
        sv = self.vertical_factor * sh
        return (sh ** 2, 0.0, 0.0, 0.0, sh ** 2, 0.0, 0.0, 0.0, sv ** 2), COVARIANCE_TYPE_APPROXIMATED

    def _gst_sentence(self, msg):
        s = (_float(msg.std_dev_latitude), _float(msg.std_dev_longitude), _float(msg.std_dev_altitude))
        if all(math.isfinite(v) and v >= 0.0 for v in s):
            self._gst = (_tod(msg.timestamp), *s)
        else:
            self.counters.parse_errors += 1
        return None

    def _velocity(self, speed_mps: float, course_deg: float, source: str) -> GnssVelocity | None:
        if not (math.isfinite(speed_mps) and 0.0 <= speed_mps < 1000.0):
            self.counters.parse_errors += 1
            return None
        if math.isfinite(course_deg):
            c = math.radians(course_deg)
            east, north = speed_mps * math.sin(c), speed_mps * math.cos(c)
        elif speed_mps == 0.0:
            c, east, north = math.nan, 0.0, 0.0
        else:
            return None  # speed without direction: not a velocity
        self.counters.velocities += 1
        return GnssVelocity(east, north, speed_mps, c, source)

    def _vtg(self, msg):
        self._seen_vtg = True
        if getattr(msg, "faa_mode", None) == "N":
            return None
        return self._velocity(_float(msg.spd_over_grnd_kmph) * KMPH_TO_MPS, _float(msg.true_track), "VTG")

    def _rmc(self, msg):
        if self._seen_vtg or msg.status != "A":
            return None
        return self._velocity(_float(msg.spd_over_grnd) * KNOTS_TO_MPS, _float(msg.true_course), "RMC")


class GnssReceiver:
    """A serial NMEA source: non-blocking reads into an :class:`NmeaParser`.

    Parameters
    ----------
    port : str
    baud : int
    parser : NmeaParser, optional
    link : SerialLink, optional
    """

    def __init__(self, port: str, baud: int = 115200, parser: NmeaParser | None = None, link=None):
        from agricare.drivers.link import SerialLink

        self.parser = parser if parser is not None else NmeaParser()
        self.link = link if link is not None else SerialLink(port, baud, timeout_s=0.0)
        self.opens = 0

    @property
    def is_open(self) -> bool:
        return self.link.is_open

    def open(self) -> None:
        self.link.open()
        self.parser.reset()
        self.opens += 1

    def close(self) -> None:
        self.link.close()

    def poll(self, max_bytes: int = 4096) -> list:
        """Read what is waiting and return the completed events; raises LinkError if the port failed."""
        data = self.link.read_available(max_bytes)
        return self.parser.feed(data) if data else []
