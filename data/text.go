package data

import "strings"

// Word lists of the generated transcriptions. They only make the synthetic
// memes look like memes in listings; no embedding is computed from them.
var (
	topicWords = []string{
		"monday", "coffee", "the gym", "exams", "football", "the kitchen", "dating apps", "the office",
		"parking", "shopping", "weddings", "video games", "diets", "selfies", "holidays", "group chats",
	}
	benignSubjects = []string{"me", "my dog", "my boss", "everyone", "nobody", "my cat", "the teacher", "my brother"}
	womanSubjects  = []string{"she", "my girlfriend", "my wife", "women", "girls", "my sister", "her"}
	benignTops     = []string{
		"when %s sees %s", "nobody:\n%s at %s", "%s after %s", "how %s looks at %s",
		"%s trying to explain %s", "pov: %s discovers %s",
	}
	benignBottoms = []string{
		"every single time", "i can't even", "worth it", "this is fine", "and i oop", "mood",
		"not again", "10/10 would do again",
	}
	stereotypeBottoms = []string{
		"back to the kitchen", "can't park, never could", "too emotional to decide", "only there for the money",
		"should have stayed quiet", "women logic",
	}
)

// transcription generates the meme text of m: a top line built from a topic
// and a subject and a bottom line. Misogynous memes whose signal is in the
// text get a stereotype punch line; interaction memes mention a woman with a
// harmless line (the image decides).
func transcription(r *splitmix, m synthMeme) string {
	topic := topicWords[m.topic%len(topicWords)]
	subj := benignSubjects[r.intn(len(benignSubjects))]
	textual := m.route == routeText || m.route == routeBoth
	if (textual && m.trueLabel == 1) || m.route == routeInteraction {
		subj = womanSubjects[r.intn(len(womanSubjects))]
	}
	top := benignTops[r.intn(len(benignTops))]
	top = strings.Replace(strings.Replace(top, "%s", subj, 1), "%s", topic, 1)
	bottom := benignBottoms[r.intn(len(benignBottoms))]
	if textual && m.trueLabel == 1 {
		bottom = stereotypeBottoms[r.intn(len(stereotypeBottoms))]
	}
	return strings.ToUpper(top) + "\n" + strings.ToUpper(bottom)
}
