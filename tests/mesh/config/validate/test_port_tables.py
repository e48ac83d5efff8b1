"""The porting tool reads Go table literals as proto JSON (so the fixtures can be made again
from a newer Istio commit)."""

from __future__ import annotations

from tests.mesh.config.validate.istio.port_tables import cases, plain

GO = """
func TestValidateExample(t *testing.T) {
	limit := durationpb.Duration{Seconds: 2}
	testCases := []struct {
		name  string
		in    proto.Message
		valid bool
	}{
		{name: "oneofs, wrappers, enums", in: &networking.DestinationRule{
			Host: "reviews",
			TrafficPolicy: &networking.TrafficPolicy{
				LoadBalancer: &networking.LoadBalancerSettings{
					LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: networking.LoadBalancerSettings_ROUND_ROBIN},
				},
				OutlierDetection: &networking.OutlierDetection{
					Interval:               &limit,
					Consecutive_5XxErrors: &wrapperspb.UInt32Value{Value: 0},
					BaseEjectionTime:       durationpb.New(time.Millisecond * 1500),
				},
			},
		}, valid: true},
		{"positional", &networking.VirtualService{Hosts: []string{strings.Repeat("a", 3)},
			Http: []*networking.HTTPRoute{{Match: []*networking.HTTPMatchRequest{{
				Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: ""}}}}}}}, false},
	}
	for _, tc := range testCases {}
}
"""


def test_go_literals_become_proto_json() -> None:
    first, second = (
        {k: plain(v) for k, v in case.items()} for case in cases(GO, "TestValidateExample")
    )
    assert first["name"] == "oneofs, wrappers, enums" and first["valid"] is True
    assert first["in"] == {
        "host": "reviews",
        "trafficPolicy": {
            "loadBalancer": {"simple": "ROUND_ROBIN"},
            "outlierDetection": {
                "interval": "2s",
                "consecutive5xxErrors": 0,  # a wrapper is present even at zero
                "baseEjectionTime": "1.5s",
            },
        },
    }
    assert second["name"] == "positional" and second["valid"] is False
    # a oneof member set to "" stays (prefix: "" is not a presence match)
    assert second["in"]["http"][0]["match"][0]["uri"] == {"prefix": ""}
    assert second["in"]["hosts"] == ["aaa"]
