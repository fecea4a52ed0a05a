"""The virtual AKD1000: its NPs, their types, and the sources of every fact."""

import akida


def test_akd1000_mesh_has_80_nps_in_20_nodes_with_the_public_types():
    device = akida.AKD1000()
    assert device.version.startswith("AKD1000")
    nps = device.mesh.nps
    assert len(nps) == 80
    assert len({np.ident[:2] for np in nps}) == 20
    assert all(np.ident[2] in range(4) for np in nps)
    for np in nps:
        if np.ident[2] == 0:
            assert np.types == [akida.NpType.CNP1, akida.NpType.FNP3]
        else:
            assert np.types == [akida.NpType.CNP1, akida.NpType.CNP2]
    assert "NP(ident=(1, 1, 0), types=[CNP1, FNP3])" == repr(nps[0])


def test_every_fact_has_a_public_source_or_is_an_assumption():
    facts = akida.AKD1000().facts()
    assert any(name == "clock (Hz)" and value == "300000000" for name, value, _ in facts)
    for name, _, source in facts:
        assert source.startswith(("public: ", "assumption: ")), (name, source)
    assert any(source.startswith("assumption: ") for _, _, source in facts)


def test_no_physical_devices():
    assert akida.devices() == []
