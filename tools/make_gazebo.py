"""Generate the Gazebo (gz sim) worlds and ros_gz_bridge configs from the embedded-simulator scenarios.

    python tools/make_gazebo.py            # writes worlds/farm.sdf, worlds/care.sdf and *_bridge.yaml

One scenario file describes both simulators, so the Gazebo world has the same field, crop rows, roads,
buildings and robots as the embedded one, and the bridge publishes exactly the topics of the contract
(agricare.bringup.contract). Robot models: worlds/models/<type>/model.sdf (hand-written, with the drive
and sensor systems); the world includes one per robot, named after the robot's namespace.
"""

from __future__ import annotations

import math
import pathlib
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "src"))
from agricare.core.mounts import MOUNTS  # noqa: E402
from agricare.core.perception.markers import BoardingSigns  # noqa: E402


def _mounts(robot_type, with_camera):
    """Sensor poses from core/mounts.py, the numbers the URDFs and the embedded simulator use."""
    m = MOUNTS[robot_type]
    return dict(lidar_xyz=m.laser_xyz, camera_xyz=m.camera_xyz, camera_pitch=m.camera_pitch_rad, gnss_xyz=m.gnss_xyz,
                with_camera=with_camera)

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (ros topic relative to the robot namespace, ros type, gz topic template, gz type, direction). gz topics
# are gz-sim's defaults for the systems and sensors in worlds/models/<type>/model.sdf:
# {m} = model (robot) name, {w} = world name.
BRIDGE = [
    ("cmd_vel", "geometry_msgs/msg/TwistStamped", "/model/{m}/cmd_vel", "gz.msgs.Twist", "ROS_TO_GZ"),
    ("odom", "nav_msgs/msg/Odometry", "/model/{m}/odometry", "gz.msgs.Odometry", "GZ_TO_ROS"),
    ("tf", "tf2_msgs/msg/TFMessage", "/model/{m}/tf", "gz.msgs.Pose_V", "GZ_TO_ROS"),
    ("imu/data", "sensor_msgs/msg/Imu", "/world/{w}/model/{m}/link/imu_link/sensor/imu/imu", "gz.msgs.IMU",
     "GZ_TO_ROS"),
    ("gnss/fix", "sensor_msgs/msg/NavSatFix", "/world/{w}/model/{m}/link/gnss_link/sensor/navsat/navsat",
     "gz.msgs.NavSat", "GZ_TO_ROS"),
    ("scan", "sensor_msgs/msg/LaserScan", "/world/{w}/model/{m}/link/laser/sensor/lidar/scan", "gz.msgs.LaserScan",
     "GZ_TO_ROS"),
    ("joint_states", "sensor_msgs/msg/JointState", "/world/{w}/model/{m}/joint_state", "gz.msgs.Model",
     "GZ_TO_ROS"),
    ("battery_state", "sensor_msgs/msg/BatteryState", "/model/{m}/battery/main_battery/state",
     "gz.msgs.BatteryState", "GZ_TO_ROS"),
    # the true pose (OdometryPublisher added to each robot's include): for measuring and for the simulated
    # world's own nodes (care_site_sim_node) only, never for a robot node
    ("ground_truth/odom", "nav_msgs/msg/Odometry", "/model/{m}/ground_truth/odometry", "gz.msgs.Odometry",
     "GZ_TO_ROS"),
]
# robots with a rear-facing safety scanner (core/mounts.py rear_laser_xyz): link laser_rear, sensor lidar_rear
SCAN_REAR = [
    ("scan_rear", "sensor_msgs/msg/LaserScan", "/world/{w}/model/{m}/link/laser_rear/sensor/lidar_rear/scan",
     "gz.msgs.LaserScan", "GZ_TO_ROS"),
]
CAMERA = [
    ("camera/image_raw", "sensor_msgs/msg/Image", "/world/{w}/model/{m}/link/camera_link/sensor/camera/image",
     "gz.msgs.Image", "GZ_TO_ROS"),
    ("camera/camera_info", "sensor_msgs/msg/CameraInfo",
     "/world/{w}/model/{m}/link/camera_link/sensor/camera/camera_info", "gz.msgs.CameraInfo", "GZ_TO_ROS"),
]


def f(v):
    return f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def box_model(name, x, y, z, sx, sy, sz, yaw=0.0, color=(0.5, 0.5, 0.5), static=True):
    rgba = " ".join(f(float(c)) for c in color) + " 1"
    return f"""    <model name="{name}">
      <static>{'true' if static else 'false'}</static>
      <pose>{f(x)} {f(y)} {f(z)} 0 0 {f(yaw)}</pose>
      <link name="link">
        <collision name="collision"><geometry><box><size>{f(sx)} {f(sy)} {f(sz)}</size></box></geometry></collision>
        <visual name="visual"><geometry><box><size>{f(sx)} {f(sy)} {f(sz)}</size></box></geometry>
          <material><ambient>{rgba}</ambient><diffuse>{rgba}</diffuse></material></visual>
      </link>
    </model>
"""


def cylinder_model(name, x, y, r, h, color=(0.3, 0.3, 0.3)):
    rgba = " ".join(f(float(c)) for c in color) + " 1"
    return f"""    <model name="{name}">
      <static>true</static>
      <pose>{f(x)} {f(y)} {f(h / 2)} 0 0 0</pose>
      <link name="link">
        <collision name="collision"><geometry><cylinder><radius>{f(r)}</radius><length>{f(h)}</length></cylinder></geometry></collision>
        <visual name="visual"><geometry><cylinder><radius>{f(r)}</radius><length>{f(h)}</length></cylinder></geometry>
          <material><ambient>{rgba}</ambient><diffuse>{rgba}</diffuse></material></visual>
      </link>
    </model>
"""


def polygon_boxes(name, poly, height, color):
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return box_model(name, (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, height / 2, max(xs) - min(xs),
                     max(ys) - min(ys), height, color=color)


def boarding_signs(world: dict) -> list[tuple[int, float, float, float, float]]:
    """The ArUco sign of each boarding point as the embedded simulator and the care mission place it:
    ``(marker id, x, y, z of the marker centre, yaw of the face's normal)`` (the face looks at the arriving shuttle)."""
    spec = world.get("boarding_signs")
    if spec is None:
        return []
    layout = BoardingSigns(**spec)
    out = []
    for i, place in enumerate(world.get("places") or []):
        b = place.get("boarding")
        if b is None:
            continue
        t, R = layout.marker_pose_in_map((float(b["x_m"]), float(b["y_m"]), math.radians(float(b["yaw_deg"]))))
        out.append((layout.id_base + i, float(t[0]), float(t[1]), float(t[2]), math.atan2(R[1, 2], R[0, 2])))
    return out


SIGN_TEXTURE_PX = 240


def sign_texture(layout: BoardingSigns, marker_id: int):
    """The sign's face (PNG bytes): the marker with a white quiet zone of one module (as the simulator draws it)."""
    import cv2

    dic = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.dictionary))
    side = SIGN_TEXTURE_PX
    border = side // 6
    img = cv2.aruco.generateImageMarker(dic, int(marker_id), side)
    img = cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT, value=255)
    ok, png = cv2.imencode(".png", img)
    assert ok
    return png.tobytes(), layout.length_m * (side + 2 * border) / side


def sign_model(marker_id: int, full_m: float, height_m: float) -> str:
    """A boarding sign: a post and a panel whose face (+x of the model, centred on the marker) carries the marker."""
    post = height_m - full_m / 2
    tex = f"model://boarding_sign_{marker_id}/materials/textures/aruco_{marker_id}.png"
    return f"""<?xml version="1.0"?>
<!-- Generated by tools/make_gazebo.py: the ArUco sign (DICT_4X4_50, marker {marker_id}) of a boarding point. -->
<sdf version="1.9">
  <model name="boarding_sign_{marker_id}">
    <static>true</static>
    <link name="link">
      <visual name="face">
        <pose>0.006 0 0 0 0 0</pose>
        <geometry><plane><normal>1 0 0</normal><size>{f(full_m)} {f(full_m)}</size></plane></geometry>
        <material><ambient>1 1 1 1</ambient><diffuse>1 1 1 1</diffuse>
          <pbr><metal><albedo_map>{tex}</albedo_map><metalness>0</metalness><roughness>1</roughness></metal></pbr>
        </material>
      </visual>
      <visual name="panel">
        <pose>-0.005 0 0 0 0 0</pose>
        <geometry><box><size>0.02 {f(full_m + 0.04)} {f(full_m + 0.04)}</size></box></geometry>
        <material><ambient>0.6 0.6 0.6 1</ambient><diffuse>0.6 0.6 0.6 1</diffuse></material>
      </visual>
      <visual name="post">
        <pose>-0.04 0 {f(-(full_m / 2 + post / 2))} 0 0 0</pose>
        <geometry><cylinder><radius>0.03</radius><length>{f(post)}</length></cylinder></geometry>
        <material><ambient>0.4 0.4 0.4 1</ambient><diffuse>0.4 0.4 0.4 1</diffuse></material>
      </visual>
      <collision name="post">
        <pose>-0.04 0 {f(-(full_m / 2 + post / 2))} 0 0 0</pose>
        <geometry><cylinder><radius>0.03</radius><length>{f(post)}</length></cylinder></geometry>
      </collision>
    </link>
  </model>
</sdf>
"""


def crop_rows(block):
    """Crop rows as thin green strips (one model per row, straight-line approximation per 5 m piece)."""
    out = []
    ox, oy = block["origin"]
    h = math.radians(block.get("heading_deg", 0.0))
    c, s = math.cos(h), math.sin(h)
    length = float(block["length_m"])
    amp = float(block.get("wave_amplitude_m", 0.0))
    wl = float(block.get("wave_length_m", 15.0))
    piece = 5.0
    for r in range(int(block["rows"])):
        lat = r * float(block["spacing_m"])
        for k in range(int(math.ceil(length / piece))):
            s0 = k * piece
            s1 = min(length, s0 + piece)
            sm = (s0 + s1) / 2
            off = amp * math.sin(2 * math.pi * sm / wl) if amp else 0.0
            x = ox + c * sm - s * (lat + off)
            y = oy + s * sm + c * (lat + off)
            out.append(box_model(f"{block['name']}_row{r}_{k}", x, y, 0.15, s1 - s0, 0.25, 0.3, h,
                                 color=(0.2, 0.55, 0.15)))
    return "".join(out)


def world_sdf(scn: dict) -> str:
    w = scn["world"]
    d = w["datum"]
    terrain = w.get("terrain") or {}
    sx, sy = float(terrain.get("slope_x", 0.0)), float(terrain.get("slope_y", 0.0))
    n = math.sqrt(sx * sx + sy * sy + 1.0)
    normal = f"{f(-sx / n)} {f(-sy / n)} {f(1.0 / n)}"
    parts = [f"""<?xml version="1.0"?>
<!-- Generated by tools/make_gazebo.py from config/scenarios: edit the scenario, then regenerate. -->
<sdf version="1.9">
  <world name="{w['name']}">
    <physics name="1ms" type="ignored"><max_step_size>0.002</max_step_size><real_time_factor>1.0</real_time_factor></physics>
    <plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>
    <plugin filename="gz-sim-user-commands-system" name="gz::sim::systems::UserCommands"/>
    <plugin filename="gz-sim-scene-broadcaster-system" name="gz::sim::systems::SceneBroadcaster"/>
    <plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors"><render_engine>ogre2</render_engine></plugin>
    <plugin filename="gz-sim-imu-system" name="gz::sim::systems::Imu"/>
    <plugin filename="gz-sim-navsat-system" name="gz::sim::systems::NavSat"/>
    <spherical_coordinates>
      <surface_model>EARTH_WGS84</surface_model>
      <world_frame_orientation>ENU</world_frame_orientation>
      <latitude_deg>{d['lat_deg']}</latitude_deg>
      <longitude_deg>{d['lon_deg']}</longitude_deg>
      <elevation>{d.get('alt_m', 0.0)}</elevation>
      <heading_deg>0</heading_deg>
    </spherical_coordinates>
    <light type="directional" name="sun">
      <cast_shadows>true</cast_shadows><pose>0 0 50 0 0 0</pose>
      <diffuse>0.9 0.9 0.85 1</diffuse><direction>-0.4 0.2 -0.9</direction>
    </light>
    <model name="ground">
      <static>true</static>
      <link name="link">
        <collision name="collision"><geometry><plane><normal>{normal}</normal><size>1000 1000</size></plane></geometry></collision>
        <visual name="visual"><geometry><plane><normal>{normal}</normal><size>1000 1000</size></plane></geometry>
          <material><ambient>0.45 0.35 0.25 1</ambient><diffuse>0.45 0.35 0.25 1</diffuse></material></visual>
      </link>
    </model>
"""]
    for fld in w.get("fields") or []:
        for blk in fld.get("crop_blocks") or []:
            parts.append(crop_rows(blk))
    for i, road in enumerate(w.get("roads") or []):
        pts = road["polyline"]
        for k in range(len(pts) - 1):
            (x0, y0), (x1, y1) = pts[k], pts[k + 1]
            ln = math.hypot(x1 - x0, y1 - y0)
            parts.append(box_model(f"road_{i}_{k}", (x0 + x1) / 2, (y0 + y1) / 2, 0.005, ln,
                                   float(road.get("width_m", 4.0)), 0.01, math.atan2(y1 - y0, x1 - x0),
                                   color=(0.25, 0.25, 0.27)))
    for p in w.get("places") or []:
        if p.get("footprint"):
            parts.append(polygon_boxes(f"building_{p['name']}", p["footprint"], 4.0, (0.8, 0.75, 0.65)))
    for o in w.get("obstacles") or []:
        if "circle" in o:
            c = o["circle"]
            parts.append(cylinder_model(o["name"], c["center"][0], c["center"][1], c["radius_m"], 2.0))
        elif "polygon" in o:
            parts.append(polygon_boxes(o["name"], o["polygon"], 1.5, (0.3, 0.3, 0.35)))
    for marker_id, x, y, z, yaw in boarding_signs(w):
        parts.append(f"""    <include>
      <uri>model://boarding_sign_{marker_id}</uri>
      <name>boarding_sign_{marker_id}</name>
      <pose>{f(x)} {f(y)} {f(z)} 0 0 {f(yaw)}</pose>
    </include>
""")
    for r in scn.get("robots") or []:
        st = r["start"]
        parts.append(f"""    <include>
      <uri>model://{r['type']}</uri>
      <name>{r['name']}</name>
      <pose>{f(float(st['x_m']))} {f(float(st['y_m']))} 0.05 0 0 {f(math.radians(float(st.get('yaw_deg', 0.0))))}</pose>
      <plugin filename="gz-sim-odometry-publisher-system" name="gz::sim::systems::OdometryPublisher">
        <odom_frame>map</odom_frame><robot_base_frame>base_link</robot_base_frame><dimensions>2</dimensions>
        <odom_publish_frequency>20</odom_publish_frequency><odom_topic>/model/{r['name']}/ground_truth/odometry</odom_topic>
      </plugin>
    </include>
""")
    parts.append("  </world>\n</sdf>\n")
    return "".join(parts)


def bridge_yaml(scn: dict) -> str:
    world = scn["world"]["name"]
    entries = [{"ros_topic_name": "/clock", "gz_topic_name": "/clock", "ros_type_name": "rosgraph_msgs/msg/Clock",
                "gz_type_name": "gz.msgs.Clock", "direction": "GZ_TO_ROS"}]
    for r in scn.get("robots") or []:
        name = r["name"]
        topics = BRIDGE + (CAMERA if r["type"] in ("row_robot", "care_shuttle") else []) \
            + (SCAN_REAR if MOUNTS[r["type"]].rear_laser_xyz is not None else [])
        for ros, rtype, gz, gtype, direction in topics:
            entries.append({"ros_topic_name": f"/{name}/{ros}", "gz_topic_name": gz.format(m=name, w=world),
                            "ros_type_name": rtype, "gz_type_name": gtype, "direction": direction})
    head = ("# Generated by tools/make_gazebo.py: ros_gz_bridge parameter_bridge config_file.\n"
            "# Every ROS topic here is in the agricare topic contract with the same type.\n")
    return head + yaml.safe_dump(entries, sort_keys=False)


def _link(name, pose, mass, geom, color, inertia):
    ixx, iyy, izz = inertia
    rgba = " ".join(f(float(c)) for c in color) + " 1"
    return f"""    <link name="{name}">
      <pose>{pose}</pose>
      <inertial><mass>{f(mass)}</mass><inertia><ixx>{f(ixx)}</ixx><iyy>{f(iyy)}</iyy><izz>{f(izz)}</izz>
        <ixy>0</ixy><ixz>0</ixz><iyz>0</iyz></inertia></inertial>
      <collision name="collision"><geometry>{geom}</geometry></collision>
      <visual name="visual"><geometry>{geom}</geometry><material><ambient>{rgba}</ambient><diffuse>{rgba}</diffuse>
      </material></visual>
    </link>
"""


def _box(m, x, y, z):
    return f"<box><size>{f(x)} {f(y)} {f(z)}</size></box>", (m / 12 * (y * y + z * z), m / 12 * (x * x + z * z),
                                                               m / 12 * (x * x + y * y))


def _wheel(m, r, w):
    i = m / 12 * (3 * r * r + w * w)
    return f"<cylinder><radius>{f(r)}</radius><length>{f(w)}</length></cylinder>", (i, i, m * r * r / 2)


def _sensors(lidar_xyz, camera_xyz, camera_pitch, gnss_xyz, with_camera):
    lx, ly, lz = lidar_xyz
    cx, cy, cz = camera_xyz
    gx, gy, gz = gnss_xyz
    cam = f"""    <link name="camera_link">
      <pose>{f(cx)} {f(cy)} {f(cz)} 0 {f(camera_pitch)} 0</pose>
      <inertial><mass>0.15</mass><inertia><ixx>1e-4</ixx><iyy>1e-4</iyy><izz>1e-4</izz></inertia></inertial>
      <sensor name="camera" type="camera">
        <update_rate>15</update_rate><always_on>true</always_on>
        <camera><horizontal_fov>1.396</horizontal_fov><image><width>640</width><height>480</height>
          <format>B8G8R8</format></image><clip><near>0.05</near><far>100</far></clip>
          <optical_frame_id>camera_optical_frame</optical_frame_id></camera>
      </sensor>
    </link>
    <joint name="camera_joint" type="fixed"><parent>chassis</parent><child>camera_link</child></joint>
""" if with_camera else ""
    return f"""    <link name="laser">
      <pose>{f(lx)} {f(ly)} {f(lz)} 0 0 0</pose>
      <inertial><mass>0.8</mass><inertia><ixx>1e-3</ixx><iyy>1e-3</iyy><izz>1e-3</izz></inertia></inertial>
      <sensor name="lidar" type="gpu_lidar">
        <update_rate>10</update_rate><always_on>true</always_on><gz_frame_id>laser</gz_frame_id>
        <lidar><scan><horizontal><samples>1080</samples><resolution>1</resolution><min_angle>-2.356</min_angle>
          <max_angle>2.356</max_angle></horizontal></scan><range><min>0.1</min><max>30</max>
          <resolution>0.01</resolution></range><noise><type>gaussian</type><stddev>0.01</stddev></noise></lidar>
      </sensor>
    </link>
    <joint name="laser_joint" type="fixed"><parent>chassis</parent><child>laser</child></joint>
    <link name="imu_link">
      <pose>0 0 0.3 0 0 0</pose>
      <inertial><mass>0.05</mass><inertia><ixx>1e-5</ixx><iyy>1e-5</iyy><izz>1e-5</izz></inertia></inertial>
      <sensor name="imu" type="imu"><update_rate>50</update_rate><always_on>true</always_on>
        <gz_frame_id>imu_link</gz_frame_id></sensor>
    </link>
    <joint name="imu_joint" type="fixed"><parent>chassis</parent><child>imu_link</child></joint>
    <link name="gnss_link">
      <pose>{f(gx)} {f(gy)} {f(gz)} 0 0 0</pose>
      <inertial><mass>0.4</mass><inertia><ixx>1e-4</ixx><iyy>1e-4</iyy><izz>1e-4</izz></inertia></inertial>
      <sensor name="navsat" type="navsat"><update_rate>10</update_rate><always_on>true</always_on>
        <gz_frame_id>gnss_link</gz_frame_id>
        <navsat><position_sensing><horizontal><noise type="gaussian"><stddev>0.02</stddev></noise></horizontal>
          </position_sensing></navsat></sensor>
    </link>
    <joint name="gnss_joint" type="fixed"><parent>chassis</parent><child>gnss_link</child></joint>
{cam}"""


BATTERY = """    <plugin filename="gz-sim-linearbatteryplugin-system" name="gz::sim::systems::LinearBatteryPlugin">
      <battery_name>main_battery</battery_name><voltage>{v}</voltage><open_circuit_voltage_constant_coef>{v}
      </open_circuit_voltage_constant_coef><open_circuit_voltage_linear_coef>-2.0</open_circuit_voltage_linear_coef>
      <initial_charge>{ah}</initial_charge><capacity>{ah}</capacity><resistance>0.07</resistance>
      <smooth_current_tau>2.0</smooth_current_tau><power_load>{w}</power_load><start_draining>true</start_draining>
    </plugin>
    <plugin filename="gz-sim-joint-state-publisher-system" name="gz::sim::systems::JointStatePublisher"/>
"""


def diff_model(name, body, mass, wheel_r, wheel_w, wheel_m, track, sensors_kw, battery):
    bx, by, bz = body
    geom, inertia = _box(mass, bx, by, bz)
    wgeom, winertia = _wheel(wheel_m, wheel_r, wheel_w)
    parts = [f"""<?xml version="1.0"?>
<!-- Generated by tools/make_gazebo.py; dimensions match urdf/{name}.urdf. -->
<sdf version="1.9">
  <model name="{name}">
""", _link("chassis", f"0 0 {f(wheel_r + bz / 2)} 0 0 0", mass, geom, (0.9, 0.9, 0.9), inertia)]
    for side, y in (("left", track / 2), ("right", -track / 2)):
        parts.append(_link(f"{side}_wheel", f"0 {f(y)} {f(wheel_r)} -1.5708 0 0", wheel_m, wgeom, (0.1, 0.1, 0.1),
                           winertia))
        parts.append(f"""    <joint name="{side}_wheel_joint" type="revolute"><parent>chassis</parent><child>{side}_wheel</child>
      <axis><xyz>0 0 1</xyz><limit><lower>-1e16</lower><upper>1e16</upper></limit></axis></joint>
""")
    for cname, cx in (("front_caster", bx / 2 - 0.1), ("rear_caster", -bx / 2 + 0.1)):
        parts.append(_link(cname, f"{f(cx)} 0 0.06 0 0 0", 1.0, "<sphere><radius>0.06</radius></sphere>",
                           (0.1, 0.1, 0.1), (1.4e-3, 1.4e-3, 1.4e-3)))
        parts.append(f"""    <joint name="{cname}_joint" type="ball"><parent>chassis</parent><child>{cname}</child></joint>
""")
    parts.append(_sensors(**sensors_kw))
    parts.append(f"""    <plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">
      <left_joint>left_wheel_joint</left_joint><right_joint>right_wheel_joint</right_joint>
      <wheel_separation>{f(track)}</wheel_separation><wheel_radius>{f(wheel_r)}</wheel_radius>
      <odom_publish_frequency>50</odom_publish_frequency><frame_id>odom</frame_id><child_frame_id>base_link</child_frame_id>
      <max_linear_acceleration>1.5</max_linear_acceleration><max_angular_acceleration>2.0</max_angular_acceleration>
    </plugin>
""")
    parts.append(BATTERY.format(**battery))
    parts.append("  </model>\n</sdf>\n")
    return "".join(parts)


def _rear_lidar(robot_type):
    """The rear-facing safety scanner (frame laser_rear): 210 deg behind the machine, as the embedded simulator."""
    m = MOUNTS[robot_type]
    x, y, z = m.rear_laser_xyz
    half = math.radians(105.0)
    return f"""    <link name="laser_rear">
      <pose>{f(x)} {f(y)} {f(z)} 0 0 {f(m.rear_laser_yaw_rad)}</pose>
      <inertial><mass>0.8</mass><inertia><ixx>1e-3</ixx><iyy>1e-3</iyy><izz>1e-3</izz></inertia></inertial>
      <sensor name="lidar_rear" type="gpu_lidar">
        <update_rate>10</update_rate><always_on>true</always_on><gz_frame_id>laser_rear</gz_frame_id>
        <lidar><scan><horizontal><samples>840</samples><resolution>1</resolution><min_angle>{f(-half)}</min_angle>
          <max_angle>{f(half)}</max_angle></horizontal></scan><range><min>0.1</min><max>40</max>
          <resolution>0.01</resolution></range><noise><type>gaussian</type><stddev>0.01</stddev></noise></lidar>
      </sensor>
    </link>
    <joint name="laser_rear_joint" type="fixed"><parent>chassis</parent><child>laser_rear</child></joint>
"""


def tractor_model():
    wheelbase, track = 2.5, 1.7
    geom, inertia = _box(3200.0, 3.6, 1.2, 1.1)
    parts = ["""<?xml version="1.0"?>
<!-- Generated by tools/make_gazebo.py; dimensions match urdf/tractor.urdf. -->
<sdf version="1.9">
  <model name="tractor">
""", _link("chassis", "1.25 0 0.9 0 0 0", 3200.0, geom, (0.8, 0.1, 0.1), inertia)]
    for side, y in (("left", track / 2), ("right", -track / 2)):
        rg, ri = _wheel(280.0, 0.8, 0.45)
        parts.append(_link(f"rear_{side}_wheel", f"0 {f(y)} 0.8 -1.5708 0 0", 280.0, rg, (0.1, 0.1, 0.1), ri))
        parts.append(f"""    <joint name="rear_{side}_wheel_joint" type="revolute"><parent>chassis</parent>
      <child>rear_{side}_wheel</child><axis><xyz>0 0 1</xyz><limit><lower>-1e16</lower><upper>1e16</upper></limit></axis>
    </joint>
""")
        parts.append(_link(f"front_{side}_steering", f"{f(wheelbase)} {f(y * 0.92)} 0.5 0 0 0", 15.0,
                           "<cylinder><radius>0.08</radius><length>0.2</length></cylinder>", (0.4, 0.4, 0.4),
                           (0.07, 0.07, 0.05)))
        parts.append(f"""    <joint name="front_{side}_steering_joint" type="revolute"><parent>chassis</parent>
      <child>front_{side}_steering</child><axis><xyz>0 0 1</xyz><limit><lower>-0.61</lower><upper>0.61</upper>
      </limit></axis></joint>
""")
        fg, fi = _wheel(90.0, 0.5, 0.3)
        parts.append(_link(f"front_{side}_wheel", f"{f(wheelbase)} {f(y)} 0.5 -1.5708 0 0", 90.0, fg, (0.1, 0.1, 0.1),
                           fi))
        parts.append(f"""    <joint name="front_{side}_wheel_joint" type="revolute"><parent>front_{side}_steering</parent>
      <child>front_{side}_wheel</child><axis><xyz>0 0 1</xyz><limit><lower>-1e16</lower><upper>1e16</upper></limit>
      </axis></joint>
""")
    ig, ii = _box(900.0, 1.2, 3.0, 0.6)
    parts.append(_link("implement", "-1.7 0 0.4 0 0 0", 900.0, ig, (0.95, 0.8, 0.1), ii))
    parts.append("""    <joint name="implement_joint" type="fixed"><parent>chassis</parent><child>implement</child></joint>
""")
    parts.append(_sensors(**_mounts("tractor", with_camera=False)))
    parts.append(_rear_lidar("tractor"))
    parts.append(f"""    <plugin filename="gz-sim-ackermann-steering-system" name="gz::sim::systems::AckermannSteering">
      <left_joint>front_left_wheel_joint</left_joint><right_joint>front_right_wheel_joint</right_joint>
      <left_steering_joint>front_left_steering_joint</left_steering_joint>
      <right_steering_joint>front_right_steering_joint</right_steering_joint>
      <kingpin_width>{f(track * 0.92)}</kingpin_width><steering_limit>0.61</steering_limit>
      <wheel_base>{f(wheelbase)}</wheel_base><wheel_separation>{f(track)}</wheel_separation>
      <wheel_radius>0.5</wheel_radius><min_velocity>-3</min_velocity><max_velocity>4</max_velocity>
      <min_acceleration>-2</min_acceleration><max_acceleration>1</max_acceleration>
      <odom_publish_frequency>50</odom_publish_frequency><frame_id>odom</frame_id><child_frame_id>base_link</child_frame_id>
    </plugin>
""")
    parts.append(BATTERY.format(v=24.0, ah=200.0, w=2000.0))
    parts.append("  </model>\n</sdf>\n")
    return "".join(parts)


MODELS = {
    "tractor": tractor_model,
    "row_robot": lambda: diff_model("row_robot", (0.8, 0.45, 0.3), 45.0, 0.15, 0.08, 3.0, 0.5,
                                    _mounts("row_robot", with_camera=True),
                                    dict(v=24.0, ah=20.0, w=120.0)),
    "care_shuttle": lambda: diff_model("care_shuttle", (1.8, 1.1, 0.35), 180.0, 0.2, 0.1, 12.0, 1.0,
                                       _mounts("care_shuttle", with_camera=True),
                                       dict(v=48.0, ah=40.0, w=400.0)),
}


WORLDS = {"farm": "farm.yaml", "care": "care.yaml"}


def main() -> int:
    out = ROOT / "worlds"
    out.mkdir(exist_ok=True)
    for world, scenario in WORLDS.items():
        scn = yaml.safe_load((ROOT / "config" / "scenarios" / scenario).read_text())
        (out / f"{world}.sdf").write_text(world_sdf(scn))
        (out / f"{world}_bridge.yaml").write_text(bridge_yaml(scn))
        print(f"wrote worlds/{world}.sdf and worlds/{world}_bridge.yaml")
        if scn["world"].get("boarding_signs") is not None:
            layout = BoardingSigns(**scn["world"]["boarding_signs"])
            for marker_id, *_ in boarding_signs(scn["world"]):
                png, full = sign_texture(layout, marker_id)
                d = out / "models" / f"boarding_sign_{marker_id}"
                (d / "materials" / "textures").mkdir(parents=True, exist_ok=True)
                (d / "materials" / "textures" / f"aruco_{marker_id}.png").write_bytes(png)
                (d / "model.sdf").write_text(sign_model(marker_id, full, layout.height_m))
                (d / "model.config").write_text(
                    f'<?xml version="1.0"?>\n<model>\n  <name>boarding_sign_{marker_id}</name>\n  <version>1.0</version>\n'
                    f'  <sdf version="1.9">model.sdf</sdf>\n  <description>agricare boarding sign, ArUco '
                    f'{layout.dictionary} marker {marker_id}</description>\n</model>\n')
            print(f"wrote worlds/models/boarding_sign_* ({len(boarding_signs(scn['world']))} signs)")
    for name, fn in MODELS.items():
        d = out / "models" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.sdf").write_text(fn())
        (d / "model.config").write_text(
            f'<?xml version="1.0"?>\n<model>\n  <name>{name}</name>\n  <version>1.0</version>\n'
            f'  <sdf version="1.9">model.sdf</sdf>\n  <description>agricare {name}</description>\n</model>\n')
        print(f"wrote worlds/models/{name}/model.sdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
