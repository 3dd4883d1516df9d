"""NMEA-0183 GNSS receiver parsing (pynmea2): GGA, RMC, VTG, GST, GSA -> fixes and velocities.

:class:`NmeaParser` takes raw bytes in any chunking (a serial read, a pty read, a file) and returns
:class:`GnssFix` / :class:`GnssVelocity` events. Nothing is raised for bad input; it is counted.

Framing. A sentence is ``$`` + printable ASCII (no ``$`` or ``*``) + ``*hh``, and only one whose checksum
``hh`` matches counts. The scanner re-synchronises on every ``$``: binary output sharing the port (UBX,
CASIC, TSIP) may precede or follow a sentence without a line break, so line breaks are not needed to
delimit sentences. A ``$`` start broken by a non-printable byte, another ``$``, or a line end before
``*hh`` is dropped (``parse_errors``; a line end before ``*`` is a missing checksum: ``checksum_errors``).

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

Services (``NavSatStatus.service``) per talker: GP GPS, GL GLONASS, GA Galileo, GB/BD BeiDou (COMPASS),
GQ QZSS (reported as GPS: the message has no QZSS bit). ``GN`` (multi-constellation) takes the
constellations of the satellites used in the receiver's GSA sentences (talker, or the NMEA 4.10 system
id), and GPS | GLONASS | Galileo | BeiDou until a GSA has been seen.

Covariance (ENU, m^2, row-major 3x3) from the GST of the *same* UTC time stamp as the GGA, whichever of
the two comes first: ``diag(sigma_lon^2, sigma_lat^2, sigma_alt^2)`` with ``COVARIANCE_TYPE_DIAGONAL_KNOWN``.
Receivers that send GST after GGA (u-blox, SkyTraq, Quectel, ST) are recognised on the first such epoch;
from then on a GGA is held until its GST arrives, a sentence of a later epoch arrives, or :meth:`flush`.
Without a GST: ``sigma_h = HDOP * UERE(quality)``, ``sigma_v = vertical_factor * sigma_h``,
``COVARIANCE_TYPE_APPROXIMATED``. No fix: NaN position, ``COVARIANCE_TYPE_UNKNOWN``.

Altitude. NavSatFix wants height above the WGS-84 ellipsoid = MSL altitude + geoid separation (GGA
fields 9 and 11). When the receiver leaves the geoid separation empty (Telit, Septentrio PolaRx2, ...) the
ellipsoidal height is unknown: the fix carries the MSL altitude (``altitude_is_ellipsoidal = False``) and
the altitude variance is widened by ``geoid_unknown_sigma_m ** 2`` (default 50 m: the geoid undulation
is within -107..+86 m world-wide), and the covariance type is APPROXIMATED.

Velocity (VTG, or RMC while no VTG has been seen). Receivers leave the course empty at low speed (u-blox
below its heading threshold): the speed is still published.

- course given: ``east = v sin(course)``, ``north = v cos(course)``, variance ``velocity_sigma_mps ** 2``;
- course empty, ``speed <= standstill_speed_mps``: standstill, zero vector, variance per axis
  ``velocity_sigma_mps ** 2 + speed ** 2`` (the true vector is within the reported speed in any direction);
- course empty, faster, a course of the last ``course_hold_s`` known: along that course, with the
  cross-track variance ``(speed * course_hold_sigma_rad) ** 2``;
- otherwise: zero vector, variance ``velocity_sigma_mps ** 2 + speed ** 2`` per axis.
"""

from __future__ import annotations

import dataclasses
import math
import re

import pynmea2

# sensor_msgs/NavSatStatus and NavSatFix constants (kept here: drivers never import ROS)
STATUS_NO_FIX, STATUS_FIX, STATUS_SBAS_FIX, STATUS_GBAS_FIX = -1, 0, 1, 2
SERVICE_GPS, SERVICE_GLONASS, SERVICE_COMPASS, SERVICE_GALILEO = 1, 2, 4, 8
SERVICE_ALL = SERVICE_GPS | SERVICE_GLONASS | SERVICE_COMPASS | SERVICE_GALILEO
COVARIANCE_TYPE_UNKNOWN, COVARIANCE_TYPE_APPROXIMATED, COVARIANCE_TYPE_DIAGONAL_KNOWN = 0, 1, 2

QUALITY_STATUS = {0: STATUS_NO_FIX, 1: STATUS_FIX, 2: STATUS_SBAS_FIX, 3: STATUS_FIX, 4: STATUS_GBAS_FIX,
                  5: STATUS_GBAS_FIX, 6: STATUS_FIX, 7: STATUS_NO_FIX, 8: STATUS_FIX, 9: STATUS_SBAS_FIX}
DEFAULT_UERE_M = {1: 3.0, 2: 1.0, 3: 3.0, 4: 0.02, 5: 0.3, 6: 10.0, 8: 3.0, 9: 1.0}
QUALITY_NAMES = {0: "invalid", 1: "GPS", 2: "DGPS", 3: "PPS", 4: "RTK fixed", 5: "RTK float",
                 6: "dead reckoning", 7: "manual", 8: "simulation", 9: "SBAS"}
#: talker id -> NavSatStatus service bits ("GN" is resolved from GSA, see the module docstring)
TALKER_SERVICE = {"GP": SERVICE_GPS, "GL": SERVICE_GLONASS, "GA": SERVICE_GALILEO, "GB": SERVICE_COMPASS,
                  "BD": SERVICE_COMPASS, "GQ": SERVICE_GPS, "QZ": SERVICE_GPS, "GN": SERVICE_ALL}
#: NMEA 4.10 GSA/GSV system id -> service bits (1 GPS, 2 GLONASS, 3 Galileo, 4 BeiDou, 5 QZSS)
SYSTEM_ID_SERVICE = {1: SERVICE_GPS, 2: SERVICE_GLONASS, 3: SERVICE_GALILEO, 4: SERVICE_COMPASS,
                     5: SERVICE_GPS}
KNOTS_TO_MPS = 1852.0 / 3600.0
KMPH_TO_MPS = 1.0 / 3.6
MAX_LINE = 160  # NMEA says 82; some receivers send longer proprietary sentences
DAY_S = 86400.0
SAME_EPOCH_S = 0.0005  # two UTC time stamps closer than this are the same epoch

_BODY = rb"[\x20-\x23\x25-\x29\x2b-\x7e]"  # printable ASCII without '$' and '*'
_SENTENCE_RE = re.compile(rb"\$(" + _BODY + rb"{1,%d})\*([0-9A-Fa-f]{2})" % MAX_LINE)
_PREFIX_RE = re.compile(rb"\$" + _BODY + rb"*")
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclasses.dataclass
class GnssFix:
    """One position fix (from GGA).

    Attributes
    ----------
    time_of_day_s : float
        UTC seconds since midnight of the fix (NaN if absent).
    latitude_deg, longitude_deg : float
        WGS-84; NaN when there is no fix.
    altitude_m : float
        Height above the WGS-84 ellipsoid when ``altitude_is_ellipsoidal``, else the MSL altitude (the
        receiver did not send the geoid separation; the altitude variance is widened). NaN if absent.
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
    altitude_msl_m : float
        Altitude above mean sea level as sent (GGA field 9), NaN if empty.
    geoid_separation_m : float
        Geoid separation as sent (GGA field 11), NaN if empty.
    altitude_is_ellipsoidal : bool
    covariance_source : str
        'GST', 'HDOP' or '' (unknown).
    sentence : str
        The GGA sentence (for logs).
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
    altitude_msl_m: float = math.nan
    geoid_separation_m: float = math.nan
    altitude_is_ellipsoidal: bool = False
    covariance_source: str = ""
    sentence: str = ""

    @property
    def has_fix(self) -> bool:
        return self.status != STATUS_NO_FIX


@dataclasses.dataclass
class GnssVelocity:
    """Ground velocity (from VTG, or RMC while no VTG has been seen).

    Attributes
    ----------
    east_mps, north_mps : float
        ENU components [m/s] (see the module docstring for an empty course).
    speed_mps : float
        Speed over ground as reported.
    course_rad : float
        Course over ground, clockwise from true north [rad]; NaN when not reported.
    source : str
        'VTG' or 'RMC'.
    covariance_en : tuple of 4 float
        Row-major 2x2 covariance of (east, north) [m^2/s^2].
    direction : str
        'course' (reported), 'held' (last good course), 'standstill' or 'unknown'.
    time_of_day_s : float
        UTC time of the epoch (RMC's own, the last time stamp seen for VTG); NaN if none yet.
    sentence : str
    """

    east_mps: float
    north_mps: float
    speed_mps: float
    course_rad: float
    source: str
    covariance_en: tuple = (0.0, 0.0, 0.0, 0.0)
    direction: str = "course"
    time_of_day_s: float = math.nan
    sentence: str = ""


@dataclasses.dataclass
class NmeaCounters:
    sentences: int = 0
    fixes: int = 0
    velocities: int = 0
    checksum_errors: int = 0
    parse_errors: int = 0
    ignored: int = 0
    overlong: int = 0
    skipped_bytes: int = 0      # bytes outside any sentence (binary protocols, line ends, noise)
    gst_matched: int = 0        # fixes with the GST of their own epoch
    gst_unmatched: int = 0      # GST whose GGA had already been published without it

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


def _same_epoch(a: float, b: float) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    d = abs(a - b)
    return min(d, DAY_S - d) < SAME_EPOCH_S


def nmea_checksum_ok(body: bytes, hexdigits: bytes) -> bool:
    c = 0
    for ch in body:
        c ^= ch
    return c == int(hexdigits, 16)


class NmeaParser:
    """Incremental NMEA parser.

    Parameters
    ----------
    uere_m : dict, optional
        Horizontal 1-sigma per unit HDOP [m] per fix quality (defaults in the module docstring).
    vertical_factor : float
        Vertical sigma = factor * horizontal sigma when no GST is available.
    geoid_unknown_sigma_m : float
        Added (as variance) to the altitude when the geoid separation is not sent.
    velocity_sigma_mps : float
        1-sigma of a velocity component with a reported course.
    standstill_speed_mps : float
        Speed at or below which an empty course means standstill.
    course_hold_s : float
        How long a reported course is used for speeds sent without one [s of UTC].
    course_hold_sigma_rad : float
        Direction uncertainty of a held course.
    """

    def __init__(self, uere_m: dict | None = None, vertical_factor: float = 2.0,
                 geoid_unknown_sigma_m: float = 50.0, velocity_sigma_mps: float = 0.1,
                 standstill_speed_mps: float = 0.5, course_hold_s: float = 2.0,
                 course_hold_sigma_rad: float = 0.5):
        self.uere_m = dict(DEFAULT_UERE_M if uere_m is None else uere_m)
        self.vertical_factor = float(vertical_factor)
        self.geoid_unknown_sigma_m = float(geoid_unknown_sigma_m)
        self.velocity_sigma_mps = float(velocity_sigma_mps)
        self.standstill_speed_mps = float(standstill_speed_mps)
        self.course_hold_s = float(course_hold_s)
        self.course_hold_sigma_rad = float(course_hold_sigma_rad)
        self.counters = NmeaCounters()
        self.gst_follows_gga = False  # learned: this receiver sends GST after GGA
        self.last_quality = -1
        self._buf = bytearray()
        self._seen_vtg = False
        self.reset()

    def reset(self) -> None:
        """Forget partial input and epoch state (after a reconnect); counters and learned order are kept."""
        self._buf.clear()
        self._gst: dict[float, tuple[float, float, float]] = {}  # tod -> sigma lat, lon, alt
        self._held: GnssFix | None = None
        self._last_published_tod = math.nan
        self._epoch_tod = math.nan
        self._course: tuple[float, float] | None = None  # tod, course rad
        self._gsa_services = 0
        self._gn_services = 0

    @property
    def holding(self) -> bool:
        """True while a GGA waits for the GST of its epoch."""
        return self._held is not None

    def flush(self) -> list:
        """Publish a held GGA without waiting longer for its GST (HDOP covariance)."""
        return self._release()

    # ------------------------------------------------------------------ framing
    def feed(self, data: bytes) -> list:
        """Consume bytes; return the :class:`GnssFix` / :class:`GnssVelocity` events they complete."""
        out: list = []
        buf = self._buf
        buf.extend(data)
        c = self.counters
        while buf:
            start = buf.find(b"$")
            if start < 0:
                c.skipped_bytes += len(buf)
                buf.clear()
                break
            if start:
                c.skipped_bytes += start
                del buf[:start]
            m = _SENTENCE_RE.match(buf)
            if m is not None:
                body, hexdigits = bytes(m.group(1)), bytes(m.group(2))  # before the buffer changes
                del buf[:m.end()]
                if not nmea_checksum_ok(body, hexdigits):
                    c.checksum_errors += 1
                    continue
                out.extend(self._sentence(b"$" + body + b"*" + hexdigits.upper()))
                continue
            n = _PREFIX_RE.match(buf).end()  # '$' + body characters
            if n > MAX_LINE + 1:
                c.overlong += 1
                del buf[:n]
                continue
            if n == len(buf):
                break  # wait for more bytes
            nxt = buf[n]
            if nxt == 0x2A:  # '*' not followed by two hex digits (yet)
                tail = buf[n + 1:n + 3]
                if all(ch in _HEX for ch in tail) and len(tail) < 2:
                    break  # wait for the rest of the checksum
                c.parse_errors += 1
                del buf[:n + 1]
            elif nxt in (0x0D, 0x0A):
                c.checksum_errors += 1  # a sentence without checksum does not count
                del buf[:n]
            else:  # '$' (a new start) or a non-printable byte: binary output broke in
                c.parse_errors += 1
                del buf[:n]
        return out

    def parse_line(self, line: bytes) -> list:
        """Parse one complete input (e.g. a line); return its events."""
        return self.feed(bytes(line) + b"\r\n")

    # ------------------------------------------------------------------ sentences
    def _sentence(self, raw: bytes) -> list:
        text = raw.decode("ascii")
        try:
            msg = pynmea2.parse(text, check=True)
        except Exception:  # pynmea2 raises ParseError, SentenceTypeError, ValueError, ...
            self.counters.parse_errors += 1
            return []
        self.counters.sentences += 1
        out: list = []
        try:
            tod = _tod(getattr(msg, "timestamp", None)) if not isinstance(msg, pynmea2.VTG) else math.nan
            if math.isfinite(tod):
                if self._held is not None and not _same_epoch(tod, self._held.time_of_day_s):
                    out.extend(self._release())
                self._epoch_tod = tod
            if isinstance(msg, pynmea2.GGA):
                out.extend(self._gga(msg, tod, text))
            elif isinstance(msg, pynmea2.GST):
                out.extend(self._gst_sentence(msg, tod))
            elif isinstance(msg, pynmea2.VTG):
                out.extend(self._vtg(msg, text))
            elif isinstance(msg, pynmea2.RMC):
                out.extend(self._rmc(msg, tod, text))
            elif isinstance(msg, pynmea2.GSA):
                self._gsa(msg)
            else:
                self.counters.ignored += 1
        except Exception:  # a field that does not convert (pynmea2 converts lazily)
            self.counters.parse_errors += 1
        return out

    def _service(self, talker: str) -> int:
        if talker == "GN":
            if self._gsa_services:
                self._gn_services, self._gsa_services = self._gsa_services, 0
            return self._gn_services or SERVICE_ALL
        return TALKER_SERVICE.get(talker, SERVICE_GPS)

    def _gsa(self, msg) -> None:
        data = list(msg.data)
        prns = [p for p in data[2:14] if p.strip()]
        if not prns:
            return
        service = 0
        if len(data) >= 18 and data[17].strip().isdigit():
            service = SYSTEM_ID_SERVICE.get(int(data[17]), 0)
        elif msg.talker != "GN":
            service = TALKER_SERVICE.get(msg.talker, 0)
        else:  # NMEA 2.x/4.0 PRN ranges: 1-32 GPS, 65-96 GLONASS
            for p in prns:
                v = int(_float(p, 0))
                service |= SERVICE_GPS if 1 <= v <= 32 else SERVICE_GLONASS if 65 <= v <= 96 else 0
        self._gsa_services |= service

    def _gga(self, msg, tod: float, text: str) -> list:
        quality = int(msg.gps_qual) if msg.gps_qual not in (None, "") else 0
        status = QUALITY_STATUS.get(quality, STATUS_NO_FIX)
        service = self._service(msg.talker)
        nsat = int(_float(msg.num_sats, 0.0))
        hdop = _float(msg.horizontal_dil)
        self.last_quality = quality
        if status == STATUS_NO_FIX or not msg.lat or not msg.lon:
            self.counters.fixes += 1
            return [GnssFix(tod, math.nan, math.nan, math.nan, quality, STATUS_NO_FIX, service, nsat, hdop,
                            (0.0,) * 9, COVARIANCE_TYPE_UNKNOWN, sentence=text)]
        lat, lon = float(msg.latitude), float(msg.longitude)
        if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90.0 and abs(lon) <= 180.0):
            raise ValueError("latitude/longitude out of range")
        msl = _float(msg.altitude)
        sep = _float(msg.geo_sep)
        ellipsoidal = math.isfinite(sep)
        alt = msl + sep if ellipsoidal else msl
        fix = GnssFix(tod, lat, lon, alt, quality, status, service, nsat, hdop, (0.0,) * 9,
                      COVARIANCE_TYPE_UNKNOWN, altitude_msl_m=msl, geoid_separation_m=sep,
                      altitude_is_ellipsoidal=ellipsoidal, sentence=text)
        gst = self._gst_for(tod)
        if gst is not None:
            return [self._publish(fix, gst)]
        if self.gst_follows_gga and math.isfinite(tod):
            out = self._release()
            self._held = fix
            return out
        return [self._publish(fix, None)]

    def _gst_for(self, tod: float):
        for g_tod, sig in self._gst.items():
            if _same_epoch(g_tod, tod):
                return sig
        return None

    def _publish(self, fix: GnssFix, gst) -> GnssFix:
        if gst is not None:
            s_lat, s_lon, s_alt = gst
            cov = [s_lon ** 2, 0.0, 0.0, 0.0, s_lat ** 2, 0.0, 0.0, 0.0, s_alt ** 2]
            cov_type, source = COVARIANCE_TYPE_DIAGONAL_KNOWN, "GST"
            self.counters.gst_matched += 1
        else:
            uere = self.uere_m.get(fix.quality)
            if uere is None or not (math.isfinite(fix.hdop) and fix.hdop > 0):
                cov, cov_type, source = [0.0] * 9, COVARIANCE_TYPE_UNKNOWN, ""
            else:
                sh = fix.hdop * uere
                sv = self.vertical_factor * sh
                cov = [sh ** 2, 0.0, 0.0, 0.0, sh ** 2, 0.0, 0.0, 0.0, sv ** 2]
                cov_type, source = COVARIANCE_TYPE_APPROXIMATED, "HDOP"
        if not fix.altitude_is_ellipsoidal and math.isfinite(fix.altitude_m) and cov_type != COVARIANCE_TYPE_UNKNOWN:
            cov[8] += self.geoid_unknown_sigma_m ** 2
            cov_type = COVARIANCE_TYPE_APPROXIMATED
        fix.position_covariance, fix.covariance_type, fix.covariance_source = tuple(cov), cov_type, source
        self._last_published_tod = fix.time_of_day_s
        self.counters.fixes += 1
        return fix

    def _release(self) -> list:
        held, self._held = self._held, None
        return [self._publish(held, None)] if held is not None else []

    def _gst_sentence(self, msg, tod: float) -> list:
        s = (_float(msg.std_dev_latitude), _float(msg.std_dev_longitude), _float(msg.std_dev_altitude))
        if not (math.isfinite(tod) and all(math.isfinite(v) and v >= 0.0 for v in s)):
            self.counters.parse_errors += 1
            return []
        self._gst[tod] = s
        while len(self._gst) > 4:
            del self._gst[next(iter(self._gst))]
        if self._held is not None and _same_epoch(self._held.time_of_day_s, tod):
            held, self._held = self._held, None
            return [self._publish(held, s)]
        if _same_epoch(self._last_published_tod, tod):  # its GGA went out without it: wait from now on
            self.counters.gst_unmatched += 1
            self.gst_follows_gga = True
        return []

    # ------------------------------------------------------------------ velocity
    def _velocity(self, speed_mps: float, course_deg: float, source: str, tod: float,
                  text: str) -> list:
        if not (math.isfinite(speed_mps) and 0.0 <= speed_mps < 1000.0):
            self.counters.parse_errors += 1
            return []
        var0 = self.velocity_sigma_mps ** 2
        if math.isfinite(course_deg):
            c = math.radians(course_deg % 360.0)
            east, north = speed_mps * math.sin(c), speed_mps * math.cos(c)
            cov, direction = (var0, 0.0, 0.0, var0), "course"
            if speed_mps > self.standstill_speed_mps:
                self._course = (tod, c)
        else:
            c = math.nan
            held = self._course
            recent = held is not None and math.isfinite(tod) and math.isfinite(held[0]) and \
                0.0 <= (tod - held[0]) % DAY_S <= self.course_hold_s
            if speed_mps > self.standstill_speed_mps and recent:
                h = held[1]
                east, north = speed_mps * math.sin(h), speed_mps * math.cos(h)
                cross = (speed_mps * self.course_hold_sigma_rad) ** 2
                # along-track var0, cross-track var0 + cross, rotated into east/north
                ue, un = math.sin(h), math.cos(h)
                ce, cn = math.cos(h), -math.sin(h)
                vc = var0 + cross
                cov = (var0 * ue * ue + vc * ce * ce, var0 * ue * un + vc * ce * cn,
                       var0 * ue * un + vc * ce * cn, var0 * un * un + vc * cn * cn)
                direction = "held"
            else:
                var = var0 + speed_mps ** 2
                east, north, cov = 0.0, 0.0, (var, 0.0, 0.0, var)
                direction = "standstill" if speed_mps <= self.standstill_speed_mps else "unknown"
        self.counters.velocities += 1
        return [GnssVelocity(east, north, speed_mps, c, source, cov, direction, tod, text)]

    def _vtg(self, msg, text: str) -> list:
        self._seen_vtg = True
        if getattr(msg, "faa_mode", None) == "N":
            return []
        # knots first: with the same number of decimals they resolve 1.85x finer than km/h
        speed = _float(msg.spd_over_grnd_kts) * KNOTS_TO_MPS
        if not math.isfinite(speed):
            speed = _float(msg.spd_over_grnd_kmph) * KMPH_TO_MPS
        return self._velocity(speed, _float(msg.true_track), "VTG", self._epoch_tod, text)

    def _rmc(self, msg, tod: float, text: str) -> list:
        if self._seen_vtg or msg.status != "A":
            return []
        return self._velocity(_float(msg.spd_over_grnd) * KNOTS_TO_MPS, _float(msg.true_course), "RMC", tod,
                              text)


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
