package triggers

import (
	"context"
	"strings"
	"testing"

	"github.com/rowgear/rowgear/internal/sqlschema"
	"github.com/rowgear/rowgear/internal/testenv"
)

// pluginTrigger is what sfGearmanPlugin's gearman:create-trigger installs
// for an UPDATE of articles, without the "… AS modified" named arguments
// that only parse once the lib_mysqludf_xql functions are installed (other
// functions MariaDB resolves when the trigger fires).
const pluginTrigger = `CREATE TRIGGER gearman_articles_UPDATE
AFTER UPDATE ON articles
FOR EACH ROW
BEGIN
  SET @gearman = gman_do_background("__mysql_trigger", xql_element("trigger", xql_element("columns", xql_forest(xql_element("id", NEW.id, NEW.id != OLD.id), xql_element("title", NEW.title, NEW.title != OLD.title))), "UPDATE", "Article"));
END`

// A table with a plugin trigger: check names it as extra and says what
// to do; the migration generate writes drops it and installs rowgear's,
// and its Down puts the plugin's back.
func TestPluginTriggerReportedAndReplaced(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t)
	articlesTable(t, db)
	mustExec(t, db, pluginTrigger)
	mustExec(t, db, "CREATE TRIGGER gearman_audit AFTER INSERT ON articles FOR EACH ROW SET @z = 1") // no gman_do_*: not the plugin's
	ctx := context.Background()
	spec := Spec{Model: "Article", Table: "articles", Namespace: testenv.Name(t, "ns")}

	drift, err := Check(ctx, db, spec)
	if err != nil {
		t.Fatal(err)
	}
	var plugin []Drift
	for _, d := range drift {
		if d.Kind == "extra" && d.Trigger != "" {
			plugin = append(plugin, d)
		}
	}
	if len(plugin) != 1 || plugin[0].Trigger != "gearman_articles_UPDATE" ||
		!strings.Contains(plugin[0].String(), "sfGearmanPlugin trigger") || !strings.Contains(plugin[0].String(), "event is lost") ||
		!strings.Contains(plugin[0].String(), "triggers generate") {
		t.Fatalf("drift %v, want the plugin trigger as extra, explained", drift)
	}

	tab, err := sqlschema.LoadTable(ctx, db, "", "articles")
	if err != nil {
		t.Fatal(err)
	}
	gen, err := Generate(spec, tab)
	if err != nil {
		t.Fatal(err)
	}
	have, err := Installed(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 1 || !have[0].Plugin {
		t.Fatalf("installed %+v, want the plugin trigger alone", have)
	}
	mig := string(MigrationReplacing(gen, have))
	up, down, _ := strings.Cut(mig, "-- +goose Down")
	if !strings.Contains(up, "DROP TRIGGER IF EXISTS `gearman_articles_UPDATE`") || !strings.Contains(down, "CREATE TRIGGER `gearman_articles_UPDATE`") {
		t.Fatalf("migration does not replace the plugin trigger:\n%s", mig)
	}
	for _, part := range strings.Split(up, "-- +goose StatementBegin\n")[1:] {
		stmt, _, _ := strings.Cut(part, ";\n-- +goose StatementEnd")
		mustExec(t, db, "CREATE TABLE IF NOT EXISTS "+sqlschema.GateTable+" (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, digest BINARY(32) NOT NULL)")
		mustExec(t, db, stmt)
	}
	drift, err = Check(ctx, db, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drift {
		if d.Trigger != "" {
			t.Errorf("after the migration: %s", d)
		}
	}
}

func TestUDFDrift(t *testing.T) {
	if d := udfDrift(UDFLibrary); d != nil {
		t.Errorf("rowgear's library: %v", d)
	}
	d := udfDrift("libgearman_mysql_udf.so")
	if d == nil || !strings.Contains(d.String(), "libgearman_mysql_udf.so") || !strings.Contains(d.String(), "DROP FUNCTION gman_do_background") {
		t.Errorf("foreign library: %v", d)
	}
}
